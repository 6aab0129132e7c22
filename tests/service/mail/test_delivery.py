"""The shared mail outbox delivered for real: a real SMTP server on localhost, real rq workers, .eml files."""

from __future__ import annotations

import logging
import os
import signal
import time
from email import message_from_bytes, policy
from typing import Any

import pytest

from service.mail import delivery, outbox
from service.runtime import use_runtime
from tests.conftest import wait_for
from tests.mailserver import Collector, SmtpServer
from tests.service.mail.conftest import CODE, TO, queue_code, row_of


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_outbox_row_is_encrypted_and_delivered_over_smtp_as_multipart(make_app: Any) -> None:
    with SmtpServer(Collector()) as server:
        app = make_app(SMTP_URL=server.url, MAIL_FROM="privacy@shop.example")
        row_id = queue_code(app)  # committed; the in-process queue delivers after the commit
        row = row_of(app, row_id)
        assert CODE.encode() not in row.text_body and TO.encode() not in row.recipient
        assert row.state == "sent" and row.sent_at is not None and row.attempts == 1
        [message] = server.handler.messages
        assert server.handler.envelopes == [("privacy@shop.example", [TO])]
        assert message["To"] == TO and message["Message-ID"] == row.message_id
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert CODE in text and CODE in html and "验证码" in text and 'lang="zh-Hans"' in html
        assert message["Content-Language"] == "zh-Hans"


def test_a_real_worker_drains_the_outbox(make_app: Any, worker_config: dict[str, str],
                                         start_worker: Any) -> None:
    with SmtpServer(Collector()) as server:
        app = make_app(**worker_config, SMTP_URL=server.url)
        row_id = queue_code(app, locale="en")
        assert row_of(app, row_id).state == "queued"  # enqueued on RQ, nothing sent by the web process
        start_worker("default", config={"SMTP_URL": server.url})
        wait_for(lambda: row_of(app, row_id).state == "sent")
        [message] = server.handler.messages
        assert CODE in message.get_body(("plain",)).get_content() and "verification code" in message["Subject"]


def test_a_batch_goes_over_one_connection_and_a_refusal_in_it_harms_no_other(make_app: Any) -> None:
    addresses = [f"p{i}@example.com" for i in range(7)]
    with SmtpServer(Collector(refuse_rcpt="550 5.1.1 <x>: mailbox unavailable", refuse_only="p3@example.com")
                    ) as server:
        app = make_app(SMTP_URL=server.url, MAIL_RETRY_SECONDS="0")
        rt = app.extensions["runtime"]
        with rt.db.session() as session:
            ids = [outbox.queue(session, rt, kind="verification_code", recipient=to, ref="req-1", dispatch=False,
                                context={"request_id": "req-1", "code": CODE, "minutes": 15}).id
                   for to in addresses]
        assert {row_of(app, i).state for i in ids} == {"queued"}  # not dispatched: the caller sends the batch
        with use_runtime(rt):
            assert delivery.deliver_batch(ids) == {"sent": 6, "failed": 1}
            assert delivery.deliver_batch(ids) == {"sent": 6, "failed": 1}  # again: nothing is sent twice
        assert [row_of(app, i).state for i in ids] == ["sent"] * 3 + ["failed"] + ["sent"] * 3
        assert [to for _, [to] in server.handler.envelopes] == addresses[:3] + addresses[4:]
        assert len(set(server.handler.peers)) == 1  # one SMTP session for the whole batch


def test_a_permanently_refused_recipient_fails_at_once_with_the_reason(make_app: Any) -> None:
    with SmtpServer(Collector(refuse_rcpt="550 5.1.1 <x>: mailbox unavailable")) as server:
        app = make_app(SMTP_URL=server.url, MAIL_MAX_ATTEMPTS="3", MAIL_RETRY_SECONDS="0")
        row = row_of(app, queue_code(app))
        assert row.state == "failed" and row.attempts == 1 and row.sent_at is None  # a 5xx is not retried
        assert "550" in row.last_error and "mailbox unavailable" in row.last_error
        assert TO not in row.last_error  # the server echoed the address; it is not kept
        assert server.handler.messages == []


def test_a_transient_refusal_is_retried_until_the_attempts_are_used_up(make_app: Any) -> None:
    with SmtpServer(Collector(refuse_rcpt="451 4.3.0 try later")) as server:
        app = make_app(SMTP_URL=server.url, MAIL_MAX_ATTEMPTS="3", MAIL_RETRY_SECONDS="0")
        row = row_of(app, queue_code(app))
        assert row.state == "failed" and row.attempts == 3 and "451" in row.last_error


def test_backoff_leaves_a_refused_row_queued_for_later(make_app: Any) -> None:
    with SmtpServer(Collector(refuse_rcpt="451 4.3.0 try later")) as server:
        app = make_app(SMTP_URL=server.url, MAIL_RETRY_SECONDS="600")
        row = row_of(app, queue_code(app))
        assert row.state == "queued" and row.attempts == 1 and "451" in row.last_error
        with use_runtime(app.extensions["runtime"]):
            assert delivery.sweep() == {"unconfirmed": 0, "enqueued": 0}  # not due yet
        assert row_of(app, row.id).attempts == 1


def test_a_worker_killed_after_the_server_accepted_does_not_send_twice(
        make_app: Any, worker_config: dict[str, str], start_worker: Any) -> None:
    handler = Collector(hold=True)  # takes the message, then holds its reply until released
    with SmtpServer(handler) as server:
        config = {**worker_config, "SMTP_URL": server.url, "MAIL_LEASE_SECONDS": "2"}
        app = make_app(**config)
        row_id = queue_code(app, locale="en")
        worker = start_worker("default", config=config)
        wait_for(lambda: len(handler.messages) == 1)
        assert row_of(app, row_id).state == "sending"
        horses = _children(worker.pid)  # rq's work horse runs in a session of its own
        os.killpg(worker.pid, signal.SIGKILL)
        for pid in horses:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
        handler.release.set()
        handler.hold = False
        rt = app.extensions["runtime"]
        delivery.enqueue(rt, row_id)  # a re-dispatch of the row, as after Redis lost its job
        start_worker("default", config=config)
        time.sleep(2.5)  # the lease lapses
        row = row_of(app, row_id)
        assert (row.state, row.attempts) == ("sending", 1), (row.state, row.attempts, row.lease_until)
        with use_runtime(rt):
            assert delivery.sweep()["unconfirmed"] == 1
            assert delivery.sweep() == {"unconfirmed": 0, "enqueued": 0}
        time.sleep(1)
        row = row_of(app, row_id)
        assert row.state == "unconfirmed" and row.attempts == 1 and "not resent" in row.last_error
        assert len(handler.messages) == 1


def test_without_smtp_url_each_message_is_an_eml_file_and_the_log_has_no_code(
        make_app: Any, instance_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    caplog.set_level(logging.DEBUG)
    row_id = queue_code(app, locale="en")
    assert row_of(app, row_id).state == "sent"
    name = row_of(app, row_id).message_id.strip("<>").split("@")[0]
    [path] = [p for p in (instance_path / "mail").glob("*.eml") if name in p.name]
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == TO and CODE in message.get_body(("plain",)).get_content()
    assert message.get_content_type() == "multipart/alternative"
    assert str(path) in caplog.text
    assert CODE not in caplog.text and TO not in caplog.text
