"""Rights requests in Chromium: made on the open web, confirmed with the code from the test's SMTP server, carried
out by a real rq worker, followed from the completion email's link to the export's download; five wrong codes
lock it; a form without its CSRF token, too many submissions and someone else's request each get their page."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from dsar.models import DsarRequest
from tests.browser.portal.conftest import CENTRE, SLUG, make_shop, submit
from tests.conftest import procfile_queues, wait_for
from tests.dsar.conftest import _app, person, write_config
from tests.mailserver import Collector, SmtpServer
from tests.portal.conftest import code_for

REQUEST = f"{CENTRE}/request"


def ask(page: Page, email: str, kind: str = "Get a copy of my data") -> Any:
    """Make a request on the open web as a person does: open the form, choose, type, send."""
    page.goto(REQUEST)
    page.get_by_label(kind).check()
    page.get_by_label("Email address").fill(email)
    return submit(page, "Send request")


def pending(page: Page) -> str:
    """The id of the request the code page is for."""
    return page.locator("main form input[name=request]").first.get_attribute("value") or ""


def status_of(page: Page, path: str) -> int:
    answer = page.goto(path)
    assert answer is not None, path
    return answer.status


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- open web, end to end: SMTP, a real worker, the email's link, the export -------------------------------

@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(Collector()) as server:
        yield server


@pytest.fixture
def worker_config(worker_config: dict[str, str], smtp: SmtpServer, tmp_path: Path) -> dict[str, str]:
    """The web app's and the workers' configuration: the demo estate, and mail to the test's SMTP server."""
    return {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml"), "SMTP_URL": smtp.url,
            "MAIL_FROM": "privacy@shop.example"}


@pytest.fixture
def rq_app(worker_config: dict[str, str]) -> Iterator[Flask]:
    """The app in its production shape (jobs on RQ) on the demo estate with its people seeded."""
    yield from _app(worker_config)


def mail(smtp: SmtpServer, to: str, subject: str, timeout: float = 60) -> EmailMessage:
    """The first message to `to` with `subject` the SMTP server accepted (waiting for it)."""
    def found() -> EmailMessage | None:
        return next((m for m in list(smtp.handler.messages) if m["To"] == to and m["Subject"] == subject), None)

    return wait_for(found, timeout=timeout)


def test_open_web_access_request_from_form_to_downloaded_export(rq_live_server, start_worker, smtp, new_page,
                                                                tmp_path: Path):
    make_shop(rq_live_server.app, rq_live_server.url)
    start_worker(*procfile_queues())  # the Procfile's worker: mail goes out on `default`
    ana = person(2).user
    page = new_page()
    sent = ask(page, ana["email"])
    assert sent.status == 200 and page.url == f"{rq_live_server.url}{CENTRE}/verify"
    request_id = pending(page)

    # The code reaches the SMTP server, delivered by the worker's mail job.
    text = mail(smtp, ana["email"], "Your verification code").get_body(("plain",)).get_content()
    code = re.search(r"^ +(\d{6})\r?$", text, re.MULTILINE).group(1)
    page.get_by_label("Code").fill(code)
    confirmed = submit(page, "Confirm")
    assert confirmed.status == 200 and page.url == f"{rq_live_server.url}{CENTRE}/requests/{request_id}"
    expect(page.get_by_role("status")).to_contain_text("Your request is confirmed")

    # The worker carries it out; the completion email links to its page.
    done = mail(smtp, ana["email"], "Your privacy request is complete")
    text = done.get_body(("plain",)).get_content()
    links = re.findall(re.escape(rq_live_server.url) + rf"{CENTRE}/link/[A-Za-z0-9_-]+", text)
    assert len(links) == 1, text
    assert links[0] in done.get_body(("html",)).get_content()

    # Opened from the email in a browser that never saw the request (another device, say).
    reader = new_page()
    reader.goto(links[0])
    assert reader.url == f"{rq_live_server.url}{CENTRE}/requests/{request_id}"  # the token left the address bar
    expect(reader.get_by_role("heading", level=1)).to_contain_text("Get a copy of my data")
    expect(reader.locator("main")).to_contain_text("Completed")
    with reader.expect_download() as downloading:
        reader.get_by_role("button", name="Download my data").click()
    download = downloading.value
    assert download.suggested_filename == f"my-data-{request_id}.zip"
    saved = tmp_path / "export.zip"
    download.save_as(saved)
    archive = zipfile.ZipFile(saved)
    records = {n: json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("stores/")
               and n.endswith(".json")}
    assert [u["email"] for u in records["stores/cloud-photos/contact.json"]] == [ana["email"]]
    assert all(r.get("user_id") in (None, ana["id"]) for rows in records.values() for r in rows)  # hers only
    content = "".join(archive.read(n).decode(errors="replace") for n in archive.namelist())
    assert person(3).user["email"] not in content and "index.html" in archive.namelist()
    # The link was single-use: opened again it is refused with a page, not a stack trace.
    assert status_of(new_page(), links[0]) == 410


# --- the rest on the embedded default (jobs in-process) ------------------------------------------------------

def test_five_wrong_codes_lead_to_the_locked_page(live_server, shop, page):
    ask(page, "ana@example.com")
    request_id = pending(page)
    right = code_for(live_server.app, request_id)
    for left in (4, 3, 2, 1):
        page.get_by_label("Code").fill(wrong(right))
        answer = submit(page, "Confirm")
        assert answer.status == 422
        expect(page.locator("#code-error")).to_have_text(
            f"That code is not right. You can try {left} more time{'s' if left > 1 else ''}.")
        expect(page.get_by_label("Code")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Code").fill(wrong(right))
    locked = submit(page, "Confirm")
    assert locked.status == 423
    expect(page.get_by_role("heading", level=1)).to_have_text("This request is locked")
    expect(page.get_by_label("Code")).to_have_count(0)
    # Locked for good: the right code cannot be entered any more.
    assert status_of(page, f"{CENTRE}/verify?request={request_id}") == 423


def test_a_form_without_its_csrf_token_gets_the_400_page_and_changes_nothing(live_server, shop, page):
    page.goto(REQUEST)
    page.get_by_label("Get a copy of my data").check()
    page.get_by_label("Email address").fill("ana@example.com")
    # Tampering no page script does: the pages have none. The form loses its hidden token.
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    refused = submit(page, "Send request")
    assert refused.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("The form could not be accepted")
    assert "Traceback" not in page.content()
    # The consent form too: a forged token is refused, and nothing is recorded.
    page.goto(shop.link("user-1"))
    page.locator(f"form[action='{CENTRE}/consents/app'] input[name=csrf_token]").evaluate(
        "input => input.value = 'forged'")
    assert submit(page, "Accept and save").status == 400
    assert shop.status("user-1")["reason"] == "no_consent"
    with live_server.app.extensions["db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(DsarRequest)) == 0


def test_too_many_requests_for_one_address_get_the_429_page(live_server, shop, page):
    for _ in range(5):  # the per-identity limit is 5 an hour
        assert ask(page, "ana@example.com").status == 200
    limited = ask(page, "Ana@Example.com")  # the same address, however it is written
    assert limited.status == 429 and int(limited.headers["retry-after"]) > 0
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many attempts")
    expect(page.locator("main")).to_contain_text(re.compile(r"Please wait \d+ seconds, then try again\."))
    assert ask(page, "bob@example.com").status == 200  # someone else is not held up


def test_another_subject_s_request_is_not_found(live_server, shop, new_page: Callable[..., Page]):
    alice = new_page()
    alice.goto(shop.link("alice"))
    alice.get_by_role("link", name="Make a request", exact=True).click()
    alice.get_by_label("Delete my data").check()
    assert submit(alice, "Send request").status == 200
    hers = alice.url
    assert re.search(rf"{CENTRE}/requests/[0-9a-f-]+$", hers), hers
    expect(alice.get_by_role("heading", level=1)).to_contain_text("Delete my data")

    bob = new_page()
    bob.goto(shop.link("bob"))
    assert status_of(bob, hers) == 404
    expect(bob.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(bob.locator("main")).not_to_contain_text("Delete my data")
    bob.goto(f"{CENTRE}/requests")
    expect(bob.locator("main")).to_contain_text("You have no requests yet.")
    # The same for a stranger on the open web, and for Alice's session under another app's address.
    assert status_of(new_page(), hers) == 404
    assert status_of(alice, hers) == 200
    assert status_of(alice, hers.replace(f"/{SLUG}/", "/other/")) == 404
