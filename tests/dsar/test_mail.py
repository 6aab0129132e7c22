"""Rights-request emails leave through the shared mail outbox and arrive at a real SMTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.mail.models import MailMessage
from tests.conftest import wait_for
from tests.dsar.conftest import _app, write_config
from tests.mailserver import Collector, SmtpServer

BODY = {"type": "access", "subject": {"user_id": "1", "email": "ana@example.com"}, "jurisdiction": "GDPR",
        "contact_email": "ana@example.com"}


def test_a_submitted_request_s_code_arrives_at_the_smtp_server(base_config: dict[str, str], tmp_path: Path,
                                                              key_for: Any) -> None:
    with SmtpServer(Collector()) as server:
        apps = _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml"),
                     "SMTP_URL": server.url, "MAIL_FROM": "dpo@shop.example", "MAIL_DEFAULT_LOCALE": "zh_Hans"})
        app = next(apps)
        try:
            client, headers = app.test_client(), key_for(app, "dsar:submit")
            r = client.post("/v1/requests", json=BODY, headers=headers)
            assert r.status_code == 202
            [message] = wait_for(lambda: list(server.handler.messages), timeout=10)
            assert message["To"] == "ana@example.com" and message["From"] == "dpo@shop.example"
            assert message.get_content_type() == "multipart/alternative" and message["Content-Language"] == "zh-Hans"
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            code = text.split("验证码是：")[1][:6]  # noqa: RUF001 - the template's own colon
            assert code.isdigit() and code in html and r.json["id"] in text
            r = client.post(f"/v1/requests/{r.json['id']}/verify", json={"code": code}, headers=headers)
            assert r.status_code == 200 and r.json["status"] != "pending_verification"
            with app.extensions["db"].sessions() as session:
                row = session.scalars(select(MailMessage).where(MailMessage.kind == "verification_code")).one()
                assert (row.state, row.message_id) == ("sent", message["Message-ID"])
        finally:
            next(apps, None)
