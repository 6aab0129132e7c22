"""Rights-request emails arrive at a real SMTP server: every notice in the request's language (English, Simplified
Chinese), text and HTML, each but the code with a single-use link that opens that request's page."""
# ruff: noqa: RUF001 - the Chinese text's full-width colons and commas are what the emails say

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from babel.dates import format_date
from flask import Flask
from sqlalchemy import select

from service import weblinks
from service.db import utcnow
from service.mail.models import MailMessage
from tests.conftest import wait_for
from tests.dsar.conftest import _app, write_config
from tests.mailserver import Collector, SmtpServer

PUBLIC = "https://privacy.example.com"
BODY = {"type": "access", "subject": {"user_id": "1", "email": "ana@example.com"}, "jurisdiction": "GDPR",
        "contact_email": "ana@example.com"}
LINK = re.compile(re.escape(PUBLIC) + r"/privacy/mi-home/link/([A-Za-z0-9_-]+)")
SUBJECTS = {
    "en": {"verification_code": "Your verification code",
           "request_received": "We have received your privacy request",
           "deadline_extended": "We need more time for your privacy request",
           "request_completed": "Your privacy request is complete",
           "request_partially_completed": "Your privacy request is partly complete",
           "request_failed": "We could not complete your privacy request",
           "request_rejected": "We cannot carry out your privacy request"},
    "zh_Hans": {"verification_code": "您的验证码",
                "request_received": "我们已收到您的隐私请求",
                "deadline_extended": "您的隐私请求需要更长的处理时间",
                "request_completed": "您的隐私请求已处理完成",
                "request_partially_completed": "您的隐私请求已部分完成",
                "request_failed": "我们未能完成您的隐私请求",
                "request_rejected": "我们无法处理您的隐私请求"},
}
# A sentence of each notice's body, per language: the catalogue was used, not only the subject's.
SENTENCES = {
    "en": {"verification_code": "Your verification code is:",
           "request_received": "We have received your request and verified your identity.",
           "deadline_extended": "we have extended the deadline",
           "request_completed": "We have completed your request.",
           "request_partially_completed": "The data we could collect is ready.",
           "request_failed": "We could not carry out your request because of a problem in our systems.",
           "request_rejected": "If you disagree, you can complain to a data protection authority"},
    "zh_Hans": {"verification_code": "您的验证码是：",
                "request_received": "我们已收到您的请求并核实了您的身份",
                "deadline_extended": "我们已延长答复期限",
                "request_completed": "我们已完成您的请求。",
                "request_partially_completed": "已收集到的数据已准备就绪。",
                "request_failed": "由于我们的系统出现问题，我们未能处理您的请求。",
                "request_rejected": "如您对此有异议，可以向数据保护监管机构投诉"},
}
LANG = {"en": "en", "zh_Hans": "zh-Hans"}
BROKEN = '[[stores]]\nname = "legacy-crm"\nplugin = "tests.dsar.plugins:BrokenStore"\n'


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(Collector()) as smtp:
        yield smtp


@pytest.fixture
def mail_app(base_config: dict[str, str], tmp_path: Path, server: SmtpServer) -> Iterator[Callable[..., Flask]]:
    """mail_app(extra_toml="", estate=..., **env): the embedded default (jobs and mail delivered in-process)
    sending to the test's SMTP server."""
    made: list[Iterator[Flask]] = []

    def make(extra: str = "", estate: str | None = "estate.toml", **env: str) -> Flask:
        config = write_config(tmp_path, extra, estate) if estate else _only_broken(tmp_path)
        apps = _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": config, "SMTP_URL": server.url,
                     "MAIL_FROM": "dpo@shop.example", "PUBLIC_URL": PUBLIC, **env})
        made.append(apps)
        return next(apps)

    yield make
    for apps in made:
        next(apps, None)


def _only_broken(tmp_path: Path) -> str:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN + "[dsar]\ntask_attempts = 2\nretry_intervals = [0]\nexport_ttl_hours = 1\n")
    return str(path)


def _received(server: SmtpServer, count: int) -> list[EmailMessage]:
    return wait_for(lambda: list(server.handler.messages) if len(server.handler.messages) >= count else None,
                    timeout=10)


def _parts(message: EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def _check(message: EmailMessage, kind: str, locale: str) -> tuple[str, str]:
    """The message is `kind` in `locale`, multipart text + HTML, to the request's contact."""
    assert message["To"] == "ana@example.com" and message["From"] == "dpo@shop.example"
    assert message["Subject"] == SUBJECTS[locale][kind]
    assert message.get_content_type() == "multipart/alternative" and message["Content-Language"] == LANG[locale]
    text, html = _parts(message)
    assert SENTENCES[locale][kind] in text and SENTENCES[locale][kind] in html
    assert f'<html lang="{LANG[locale]}">' in html
    return text, html


def _code(text: str) -> str:
    return re.search(r"^ +(\d{6})\r?$", text, re.MULTILINE).group(1)


def _token(text: str, html: str) -> str:
    [token] = LINK.findall(text)
    assert f'href="{PUBLIC}/privacy/mi-home/link/{token}"' in html
    return token


@pytest.mark.parametrize(("tag", "locale"), [("zh-CN", "zh_Hans"), ("en-GB", "en")])
def test_code_received_and_completed_arrive_in_the_request_s_language(mail_app, key_for, server, tag, locale,
                                                                      caplog):
    caplog.set_level(logging.DEBUG)
    app = mail_app()
    client, headers = app.test_client(), key_for(app, "dsar:submit")
    r = client.post("/v1/requests", json={**BODY, "locale": tag}, headers=headers)
    assert r.status_code == 202 and r.json["locale"] == locale
    request_id = r.json["id"]
    [message] = _received(server, 1)
    text, html = _check(message, "verification_code", locale)
    code = _code(text)
    assert code in html and request_id in text and not LINK.search(text)  # the code email has no link
    r = client.post(f"/v1/requests/{request_id}/verify", json={"code": code}, headers=headers)
    assert r.status_code == 200 and r.json["status"] == "completed"  # in-process: executed at once
    _, received, completed = _received(server, 3)
    text, html = _check(received, "request_received", locale)
    due = format_date(date.fromisoformat(r.json["due_at"][:10]), "long", locale=locale)
    assert due in text and due in html
    received_token = _token(text, html)
    text, html = _check(completed, "request_completed", locale)
    ready = {"en": "Your data is ready. Download it from your request's page within 1 hour",
             "zh_Hans": "您的数据已准备就绪。请在1小时内通过请求页面下载"}[locale]
    assert ready in text and ready in html  # an access request's export is ready
    token = _token(text, html)
    assert token != received_token  # each notice mints its own link
    keys = app.extensions["keys"]
    with app.extensions["db"].session() as session:
        row = session.scalars(select(weblinks.WebLink).where(weblinks.WebLink.token_hash
                                                             == weblinks.token_hash(token))).one()
        # the link lives as long as the export ([dsar] export_ttl_hours = 1 here), not the 10 minutes of a sign-in
        assert abs(row.expires_at - (utcnow() + timedelta(hours=1))) < timedelta(minutes=1)
        opened = weblinks.redeem(session, keys, token)
    assert (opened.kind, opened.request_id, opened.locale) == (weblinks.REQUEST, request_id, locale)
    with app.extensions["db"].session() as session, pytest.raises(weblinks.LinkRefused):
        weblinks.redeem(session, keys, token)  # single use
    with app.extensions["db"].sessions() as session:
        rows = session.scalars(select(MailMessage).where(MailMessage.ref == request_id)).all()
        assert {(m.kind, m.locale, m.state) for m in rows} == {
            (kind, locale, "sent") for kind in ("verification_code", "request_received", "request_completed")}
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))  # not aiosmtpd's
    assert "mail request_completed queued" in ours
    assert token not in ours and received_token not in ours and code not in ours and "ana@example.com" not in ours


def test_a_vouched_request_is_acknowledged_without_a_code(mail_app, key_for, server):
    app = mail_app(MAIL_DEFAULT_LOCALE="zh_Hans")
    client, headers = app.test_client(), key_for(app)
    r = client.post("/v1/requests", json={**BODY, "type": "erasure", "verified": True}, headers=headers)
    assert r.status_code == 202 and r.json["locale"] == "zh_Hans"  # none given: MAIL_DEFAULT_LOCALE
    received, completed = _received(server, 2)
    text, _ = _check(received, "request_received", "zh_Hans")
    assert "请求类型：删除您的个人信息" in text and f"请求编号：{r.json['id']}" in text
    text, html = _check(completed, "request_completed", "zh_Hans")
    assert "您的数据已准备就绪" not in text  # an erasure has nothing to download
    assert "您可以在请求页面上查看详情" in text and _token(text, html)


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_rejection_is_sent_with_its_reason(mail_app, key_for, server, locale):
    app = mail_app()
    client, headers = app.test_client(), key_for(app)
    request_id = client.post("/v1/requests", json={**BODY, "locale": locale}, headers=headers).json["id"]
    reason = "We hold no account for this address & <name>."
    r = client.post(f"/v1/requests/{request_id}/reject", json={"reason": reason}, headers=headers)
    assert r.status_code == 200 and r.json["status"] == "rejected"
    _, rejected = _received(server, 2)
    text, html = _check(rejected, "request_rejected", locale)
    label = {"en": "Reason: ", "zh_Hans": "原因："}[locale]
    assert f"{label}{reason}" in text
    assert f"{label}We hold no account for this address &amp; &lt;name&gt;." in html  # escaped in HTML
    with app.extensions["db"].session() as session:
        opened = weblinks.redeem(session, app.extensions["keys"], _token(text, html))
    assert opened.request_id == request_id


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_an_extension_is_sent_with_the_new_deadline(mail_app, key_for, server, locale):
    app = mail_app()
    client, headers = app.test_client(), key_for(app)
    request_id = client.post("/v1/requests", json={**BODY, "locale": locale}, headers=headers).json["id"]
    r = client.post(f"/v1/requests/{request_id}/extend", json={"reason": "many systems"}, headers=headers)
    assert r.status_code == 200
    _, extended = _received(server, 2)
    text, html = _check(extended, "deadline_extended", locale)
    due = format_date(date.fromisoformat(r.json["due_at"][:10]), "long", locale=locale)
    assert due in text and due in html and "many systems" in text and _token(text, html)


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_a_partly_completed_access_request_says_so_and_offers_what_was_collected(mail_app, key_for, server,
                                                                                   locale):
    app = mail_app(BROKEN)
    client, headers = app.test_client(), key_for(app)
    r = client.post("/v1/requests", json={**BODY, "verified": True, "locale": locale}, headers=headers)
    assert r.status_code == 202 and r.json["status"] == "partially_completed"
    _, partial = _received(server, 2)
    text, html = _check(partial, "request_partially_completed", locale)
    assert _token(text, html)


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_a_failed_request_says_so(mail_app, key_for, server, locale):
    app = mail_app(estate=None)  # the broken store is the only one
    client, headers = app.test_client(), key_for(app)
    r = client.post("/v1/requests", json={**BODY, "verified": True, "locale": locale}, headers=headers)
    assert r.status_code == 202 and r.json["status"] == "failed"
    _, failed = _received(server, 2)
    text, html = _check(failed, "request_failed", locale)
    assert _token(text, html)


def test_the_locale_is_checked_and_normalised(mail_app, key_for, server):
    app = mail_app()
    client, headers = app.test_client(), key_for(app, "dsar:submit")
    for tag, expected in [("zh_Hans", "zh_Hans"), ("zh-Hans-CN", "zh_Hans"), ("en", "en"), ("EN-us", "en"),
                          (None, "en")]:
        r = client.post("/v1/requests", json={**BODY, "locale": tag}, headers=headers)
        assert r.status_code == 202 and r.json["locale"] == expected, (tag, r.json)
    for tag in ["fr", "de-DE", "english", "zh--CN", "", "x" * 40, 7]:
        r = client.post("/v1/requests", json={**BODY, "locale": tag}, headers=headers)
        assert r.status_code == 422 and "locale" in r.json["errors"]["json"], (tag, r.json)
    assert len(server.handler.messages) == 5  # one code per accepted request, none for a refused one
