"""`flask mail`: an operator lists the outbox (never an address or a body) and requeues the rows a dead worker left
`unconfirmed` or that failed, with a reason kept in the audit trail; other rows are refused, nothing changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from service.audit import AuditEvent
from service.db import utcnow
from service.mail import delivery
from service.mail.models import MailMessage
from service.runtime import use_runtime
from tests.mailserver import Collector, SmtpServer
from tests.service.mail.conftest import CODE, TO, queue_code, row_of


def _unconfirmed(app: Any, row_id: str) -> None:
    """What a worker killed mid-transaction leaves: `sending` past its lease; the sweep marks it unconfirmed."""
    with app.extensions["db"].session() as session:
        session.execute(update(MailMessage).where(MailMessage.id == row_id)
                        .values(state="sending", attempts=MailMessage.attempts + 1,
                                lease_until=utcnow() - timedelta(seconds=1)))
    with use_runtime(app.extensions["runtime"]):
        assert delivery.sweep()["unconfirmed"] == 1


def _audit(app: Any) -> list[AuditEvent]:
    with app.extensions["db"].sessions() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "mail.requeued")))
        session.expunge_all()
        return rows


def test_list_shows_states_and_errors_but_no_address_or_body(make_app):
    with SmtpServer(Collector(refuse_rcpt="550 5.1.1 <x>: mailbox unavailable")) as server:
        app = make_app(SMTP_URL=server.url, MAIL_MAX_ATTEMPTS="1")
        failed = queue_code(app)
        server.handler.refuse_rcpt = None
        sent = queue_code(app, locale="en")
        runner = app.test_cli_runner()
        result = runner.invoke(args=["mail", "list"])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].split("\t") == ["id", "kind", "state", "attempts", "created", "last_error"]
        rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
        assert rows[failed][1:4] == ["verification_code", "failed", "1"] and "550" in rows[failed][5]
        assert rows[sent][1:4] == ["verification_code", "sent", "1"] and rows[sent][5] == ""
        assert TO not in result.output and CODE not in result.output
        only = runner.invoke(args=["mail", "list", "--state", "failed"])
        assert only.exit_code == 0 and failed in only.output and sent not in only.output
        bad = runner.invoke(args=["mail", "list", "--state", "lost"])
        assert bad.exit_code != 0 and "--state" in bad.output


def test_requeue_sends_an_unconfirmed_row_again_and_audits_the_reason(make_app):
    with SmtpServer(Collector()) as server:
        app = make_app(SMTP_URL=server.url, REDIS_URL="", MAIL_RETRY_SECONDS="600")
        server.handler.refuse_rcpt = "451 4.3.0 try later"
        row_id = queue_code(app)  # refused once: queued for a retry in ten minutes
        _unconfirmed(app, row_id)
        assert row_of(app, row_id).state == "unconfirmed" and server.handler.messages == []
        server.handler.refuse_rcpt = None
        result = app.test_cli_runner().invoke(
            args=["mail", "requeue", row_id, "--reason", "not in the relay's log"])
        assert result.exit_code == 0, result.output
        row = row_of(app, row_id)  # delivered in-process at once
        assert (row.state, row.attempts) == ("sent", 3) and len(server.handler.messages) == 1
        [event] = _audit(app)
        assert (event.actor, event.resource_type, event.resource_id) == ("cli:mail requeue", "mail_message", row_id)
        assert event.details == {"from": "unconfirmed", "kind": "verification_code", "attempts": 2,
                                 "reason": "not in the relay's log"}


def test_requeue_gives_a_failed_row_another_attempt(make_app):
    with SmtpServer(Collector(refuse_rcpt="550 5.1.1 <x>: mailbox unavailable")) as server:
        app = make_app(SMTP_URL=server.url, MAIL_MAX_ATTEMPTS="2", MAIL_RETRY_SECONDS="0")
        row_id = queue_code(app)
        assert (row_of(app, row_id).state, row_of(app, row_id).attempts) == ("failed", 1)  # a 5xx: at once
        server.handler.refuse_rcpt = None  # the address was fixed at the other end
        result = app.test_cli_runner().invoke(args=["mail", "requeue", row_id, "--reason", "mailbox restored"])
        assert result.exit_code == 0, result.output
        assert row_of(app, row_id).state == "sent" and len(server.handler.messages) == 1
        assert [e.details["from"] for e in _audit(app)] == ["failed"]


def test_requeue_refuses_other_rows_and_changes_nothing(make_app):
    with SmtpServer(Collector(refuse_rcpt="550 5.1.1 <x>: mailbox unavailable")) as server:
        app = make_app(SMTP_URL=server.url, MAIL_MAX_ATTEMPTS="1")
        failed = queue_code(app)
        server.handler.refuse_rcpt = None
        sent = queue_code(app)
        runner = app.test_cli_runner()
        result = runner.invoke(args=["mail", "requeue", failed, sent, "no-such-id", "--reason", "try"])
        assert result.exit_code != 0
        assert f"{sent} (sent)" in result.output and "no-such-id (unknown)" in result.output
        assert "nothing changed" in result.output
        assert row_of(app, failed).state == "failed" and _audit(app) == []
        missing = runner.invoke(args=["mail", "requeue", failed])
        assert missing.exit_code != 0 and "--reason" in missing.output
        blank = runner.invoke(args=["mail", "requeue", failed, "--reason", "  "])
        assert blank.exit_code != 0 and row_of(app, failed).state == "failed"
