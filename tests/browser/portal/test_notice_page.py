"""The page an incident notice links to, in Chromium: opened from the link in each person's email (English and
Chinese), light, local and accessible, photographed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer

from incidents.models import Delivery
from privacy import create_app
from service.mail.message import read
from service.mail.models import MailMessage
from service.tenancy import create_app_tenant, create_key
from tests.browser.conftest import _serving, network_of
from tests.conftest import _truncate
from tests.incidents.conftest import body, config_text
from tests.incidents.test_assessment import SCOPE, _window
from tests.incidents.test_campaigns import MESSAGES

LINK = re.compile(r"http://\S+/privacy/shop/notices/\S+")


@pytest.fixture
def notice_server(_http_server: BaseWSGIServer, live_url: str, base_config: dict[str, str],
                  tmp_path: Path) -> Iterator[Any]:
    """An app over the incidents tests' listing stores (people u1 and u2 with emails), served over real HTTP."""
    (tmp_path / "privacy.toml").write_text(config_text(tmp_path))
    inside = (_window()[0] + timedelta(days=1)).isoformat()
    people = [[inside, {"user_id": "u1", "email": "ana@example.com"}],
              [inside, {"user_id": "u2", "email": "li@example.com"}]]
    (tmp_path / "crm.json").write_text(json.dumps({"contact": people}))
    app: Flask = create_app({**base_config, "PRIVACY_CONFIG": str(tmp_path / "privacy.toml"), "REDIS_URL": ""})
    app.config["TESTING"] = True
    with _serving(_http_server, live_url, app) as live:
        yield live
    _truncate(app)
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


def _links(app: Flask) -> dict[str, str]:
    """Each recipient's notice link, read from the email as it was queued."""
    keys = app.extensions["keys"]
    with app.extensions["db"].sessions() as session:
        rows = session.scalars(select(MailMessage).join(Delivery, Delivery.mail_id == MailMessage.id)).all()
        mails = [read(keys, row) for row in rows]
    return {mail.recipient: LINK.findall(mail.text)[0] for mail in mails}


@pytest.mark.sqlite_only
def test_the_notice_page_from_each_email(notice_server, new_page: Callable[..., Page],
                                         check_page: Callable[[Page], None], screenshot: Any):
    app = notice_server.app
    with app.extensions["db"].session() as session:
        create_app_tenant(session, "shop", "Shop")
        _, manage = create_key(session, "shop", frozenset({"incidents:manage", "admin", "consent:write"}))
    headers, client = {"Authorization": f"Bearer {manage}"}, app.test_client()
    policy = {"key": "p", "title": "Policy", "purposes": [{"key": "core", "description": "Run", "required": True,
                                                           "lawful_basis": "contract"}]}
    assert client.post("/v1/policies", json=policy, headers=headers).status_code == 201
    assert client.post("/v1/policies/p/versions", json={"version": "1", "text": "t", "material": True},
                       headers=headers).status_code == 201
    assert client.post("/v1/consents", headers=headers, json={
        "subject_id": "u2", "policy": "p", "version": "1", "purposes": {"core": True}, "channel": "web",
        "locale": "zh-CN"}).status_code == 201
    since, until = _window()
    made = client.post("/v1/incidents", headers=headers, json=body(
        occurred_from=since.isoformat(), occurred_until=until.isoformat(), scope=SCOPE[:1]))
    assert made.status_code == 201, made.json
    url = f"/v1/incidents/{made.json['id']}"
    assert client.patch(url, headers=headers, json={"reason": "known now", "measures": "We closed the bucket.",
                                                    "consequences": "Someone may try to sign in as you."}
                        ).status_code == 200
    assert client.post(f"{url}/assessment-runs", headers=headers).status_code == 202
    for dry in (True, False):
        sent = client.post(f"{url}/campaigns", headers=headers, json={"messages": MESSAGES, "dry_run": dry})
        assert sent.status_code == 202 and sent.json["state"] == "succeeded", sent.json
    links = _links(app)
    assert links["ana@example.com"].endswith("?lang=en") and links["li@example.com"].endswith("?lang=zh_Hans")

    for address, lang, heading, html_lang in (("ana@example.com", "en", MESSAGES["en"]["subject"], "en"),
                                              ("li@example.com", "zh", MESSAGES["zh"]["subject"], "zh-Hans")):
        page = new_page(locale="en-GB")  # the email's language wins over the browser's
        network_of(page).reset()
        answer = page.goto(links[address], wait_until="load")
        assert answer is not None and answer.status == 200
        assert "?" not in page.url  # the language moved into the cookie
        assert page.locator("html").get_attribute("lang") == html_lang
        assert page.locator("h1").inner_text() == heading
        assert "We closed the bucket." in page.locator("main").inner_text()
        assert page.get_by_role("link", name=re.compile("delete|删除")).count() == 1
        check_page(page)
        screenshot(page, f"incident-notice-{lang}", full_page=True)
