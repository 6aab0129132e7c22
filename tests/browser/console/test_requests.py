"""Working requests in the console, in Chromium: an agent verifies an open-web request with the code the requester
received by email (the test's SMTP server), a real rq worker carries it out, and the agent gives the requester a
new link to download the export; an agent extends a request's deadline with a reason the page then shows."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from dsar.models import DsarRequest
from service.db import utcnow
from tests.browser.conftest import network_of
from tests.browser.console.conftest import make_operator, sign_in
from tests.browser.portal.conftest import CENTRE, make_shop, submit
from tests.browser.portal.test_request_flow import ask, mail, pending
from tests.conftest import procfile_queues, wait_for
from tests.dsar.conftest import person


def act(page: Page, request_id: str, action: str, reason: str = "", code: str | None = None) -> None:
    """From the request's page: the action's button, its confirmation page, the reason (and code), confirm."""
    page.goto(f"/console/requests/{request_id}")
    page.get_by_role("link", name=action, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(action)
    if code is not None:
        page.get_by_label("The requester's code").fill(code)
    if reason:
        page.get_by_label(re.compile(r"^Reason")).fill(reason)
    network_of(page).reset()  # what follows is weighed by check_page: the answer to the form
    submit(page, f"Confirm: {action}")


def load(page: Page, path: str) -> None:
    """Open `path` afresh, so check_page weighs this load alone."""
    network_of(page).load(page, path)


def status_of(app, request_id: str) -> str:
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(DsarRequest.status).where(DsarRequest.id == request_id))


def test_agent_verifies_an_open_web_request_a_worker_completes_it_and_the_agent_mints_the_export_link(
        rq_live_server, start_worker, smtp, new_page, check_page):
    make_shop(rq_live_server.app, rq_live_server.url)
    start_worker(*procfile_queues())  # the Procfile's worker: mail goes out on `default`
    ana = person(2).user
    requester = new_page()
    ask(requester, ana["email"])
    request_id = pending(requester)
    text = mail(smtp, ana["email"], "Your verification code").get_body(("plain",)).get_content()
    code = re.search(r"^ +(\d{6})\r?$", text, re.MULTILINE).group(1)  # read to the agent, say, on the phone

    agent = new_page()
    assert sign_in(agent, make_operator(rq_live_server.app, "agent@example.com", "agent")).status == 200
    agent.get_by_role("link", name="Requests", exact=True).click()
    agent.locator(f'a[href="/console/requests/{request_id}"]').click()
    load(agent, f"/console/requests/{request_id}")
    expect(agent.locator("table.facts")).to_contain_text("Awaiting verification")
    check_page(agent)
    act(agent, request_id, "Verify with the requester's code", "Called the requester back", code=code)
    expect(agent.get_by_role("status")).to_contain_text("Done: Verify with the requester's code.")

    wait_for(lambda: status_of(rq_live_server.app, request_id) == "completed", timeout=90)
    agent.reload()
    expect(agent.locator("table.facts")).to_contain_text("Completed")
    expect(agent.locator("ol.timeline")).to_contain_text("agent@example.com")  # the operator, by email
    act(agent, request_id, "Give the requester a new download link", "Asked by phone for a new link")
    link = agent.locator("pre.token").inner_text().strip()
    assert re.fullmatch(re.escape(rq_live_server.url) + rf"{CENTRE}/link/[A-Za-z0-9_-]+", link), link
    check_page(agent)

    # The requester opens it (sent by the agent) and downloads their data.
    reader = new_page()
    reader.goto(link)
    assert reader.url == f"{rq_live_server.url}{CENTRE}/requests/{request_id}"
    with reader.expect_download() as downloading:
        reader.get_by_role("button", name="Download my data").click()
    assert downloading.value.suggested_filename == f"my-data-{request_id}.zip"


def test_agent_extends_a_request_with_a_reason(live_server, new_page, check_page, make_key):
    headers = make_key("shop", "dsar:submit")
    answer = live_server.app.test_client().post("/v1/requests", headers=headers, json={
        "type": "erasure", "jurisdiction": "GDPR", "subject": {"email": "bo@example.com"},
        "contact_email": "bo@example.com"})
    assert answer.status_code == 202, answer.json
    request_id = answer.json["id"]
    with live_server.app.extensions["db"].sessions() as session:
        due = session.scalar(select(DsarRequest.due_at).where(DsarRequest.id == request_id))

    page = new_page()
    assert sign_in(page, make_operator(live_server.app, "agent@example.com", "agent")).status == 200
    page.goto(f"/console/requests/{request_id}")
    page.get_by_role("link", name="Extend the deadline", exact=True).click()
    load(page, page.url)
    check_page(page)
    page.get_by_label(re.compile(r"^Reason")).fill("Data sits in three archives; retrieval takes weeks")
    submit(page, "Confirm: Extend the deadline")
    expect(page.get_by_role("status")).to_contain_text("Done: Extend the deadline.")
    expect(page.locator("table.facts")).to_contain_text(
        "Extended: Data sits in three archives; retrieval takes weeks")
    expect(page.get_by_role("link", name="Extend the deadline", exact=True)).to_have_count(0)  # once only
    with live_server.app.extensions["db"].sessions() as session:
        extended = session.scalar(select(DsarRequest).where(DsarRequest.id == request_id))
        assert extended.due_at - due > timedelta(days=55) and extended.extended_at <= utcnow()
