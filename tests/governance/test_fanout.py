"""Erasure fan-out: a completed erasure request tells each processor that receives an erased category, by a signed
webhook to a real HTTP receiver or an email to the real SMTP server, and each must acknowledge."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from governance import fanout
from governance.models import ErasureNotice
from service.audit import AuditEvent
from service.db import utcnow
from service.wiring import ErasureCompleted
from tests.conftest import wait_for
from tests.dsar.conftest import ALL, _app, write_config
from tests.mailserver import Collector, SmtpServer

PUBLIC = "https://privacy.example.com"
ACK = re.compile(re.escape(PUBLIC) + r"(/governance/erasure-acks/[A-Za-z0-9_-]+)")
GOVERN = "platform:governance"
PROCESSORS = "/v1/governance/processors"


class Receiver:
    """A real HTTP server in a thread: answers each POST with the next status of `statuses` (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses, self.received = list(statuses or []), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/erasure"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.received if r["status"] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(Collector()) as server:
        yield server


@pytest.fixture
def fan_app(base_config: dict[str, str], tmp_path: Path, smtp: SmtpServer) -> Iterator[Flask]:
    """The embedded default (jobs in-process) on the demo estate, mail to the test's SMTP server, no backoff."""
    yield from _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml"),
                     "SMTP_URL": smtp.url, "MAIL_FROM": "dpo@shop.example", "PUBLIC_URL": PUBLIC,
                     "GOVERNANCE_ERASURE_RETRY_SECONDS": "0", "GOVERNANCE_ERASURE_ATTEMPTS": "4"})


def key(app: Flask, slug: str, scopes: str) -> dict[str, str]:
    from service.tenancy import App, create_app_tenant, create_key

    with app.extensions["db"].session() as session:
        if session.scalar(select(App.id).where(App.slug == slug)) is None:
            create_app_tenant(session, slug)
        _, secret = create_key(session, slug, frozenset(scopes.split(",")))
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def headers(fan_app: Flask) -> dict[str, str]:
    """The app's key, which also keeps the processor register (platform:governance)."""
    return key(fan_app, "mi-home", f"{ALL},{GOVERN}")


def register(client: Any, headers: dict[str, str], key: str, categories: list[str], **erasure: str) -> Any:
    r = client.post(PROCESSORS, json={"key": key, "name": f"{key.title()} Ltd", "role": "processor",
                                      "countries": ["NL"], "categories": categories, **erasure}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def erase(client: Any, headers: dict[str, str], user_id: str) -> dict[str, Any]:
    r = client.post("/v1/requests", json={"type": "erasure", "subject": {"user_id": user_id}, "jurisdiction": "GDPR",
                                          "verified": True}, headers=headers)
    assert r.status_code == 202, r.json

    def closed() -> Any:
        body = client.get(f"/v1/requests/{r.json['id']}", headers=headers).json
        return body if body["status"] in ("completed", "partially_completed") else None

    return wait_for(closed)


def states(client: Any, headers: dict[str, str], request_id: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"/v1/requests/{request_id}/processors", headers=headers)
    assert r.status_code == 200, r.json
    return {n["processor"]: n for n in r.json}


def test_webhook_is_signed_and_only_processors_of_erased_categories_are_told(fan_app, headers, receivers, smtp):
    client = fan_app.test_client()
    crm, ads = receivers(), receivers()
    secret = register(client, headers, "crm", ["contact", "orders"], erasure_webhook=crm.url)["erasure"]["secret"]
    register(client, headers, "ads", ["ad_profile"], erasure_webhook=ads.url)  # no erased category
    register(client, headers, "quiet", ["contact"])  # no erasure contact: nothing to send to
    req = erase(client, headers, "2")
    wait_for(crm.accepted)
    [message] = crm.received
    body, sent = message["body"], message["headers"]
    timestamp = int(sent["X-Privacy-Timestamp"])
    assert abs(time.time() - timestamp) < 60
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sent["X-Privacy-Signature"], f"v1={expected}")
    payload = json.loads(body)
    assert payload["type"] == "erasure_notice" and payload["request"] == req["id"]
    assert payload["categories"] == ["contact", "orders"] and payload["subject"] == {"user_id": "2"}
    assert sent["X-Privacy-Notice"] == payload["notice"]
    assert ads.received == [] and smtp.handler.messages == []
    shown = states(client, headers, req["id"])
    assert set(shown) == {"crm"}
    assert shown["crm"]["state"] == "acknowledged" and shown["crm"]["attempts"] == 1
    assert shown["crm"]["acknowledged_at"] is not None and shown["crm"]["mail_state"] is None


def test_receiver_failing_twice_gets_it_once_and_it_ends_acknowledged(fan_app, headers, receivers):
    client = fan_app.test_client()
    flaky = receivers([500, 503])
    register(client, headers, "flaky", ["photos"], erasure_webhook=flaky.url)
    req = erase(client, headers, "3")
    wait_for(lambda: states(client, headers, req["id"])["flaky"]["state"] == "acknowledged")
    assert [r["status"] for r in flaky.received] == [500, 503, 200]
    assert len(flaky.accepted()) == 1
    assert len({r["headers"]["X-Privacy-Notice"] for r in flaky.received}) == 1  # one notice, sent three times
    assert states(client, headers, req["id"])["flaky"]["attempts"] == 3
    with fan_app.extensions["db"].session() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.resource_id == req["id"],
                                                                      AuditEvent.action.like("governance.%"))
                                       .order_by(AuditEvent.id)))
    assert actions == ["governance.erasure_notice_created", "governance.erasure_notice_retry",
                       "governance.erasure_notice_retry", "governance.erasure_notice_acknowledged"]


def test_email_processor_gets_the_message_and_acknowledges_by_its_link(fan_app, headers, smtp):
    client = fan_app.test_client()
    register(client, headers, "mailer", ["contact", "avatars"], erasure_email="privacy@mailer.example")
    req = erase(client, headers, "4")
    wait_for(lambda: smtp.handler.messages)
    [message] = smtp.handler.messages
    assert message["To"] == "privacy@mailer.example" and req["id"] in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "- contact" in text and "- avatars" in text and "user_id: 4" in text
    assert states(client, headers, req["id"])["mailer"]["state"] == "sent"
    wait_for(lambda: states(client, headers, req["id"])["mailer"]["mail_state"] == "sent")
    path = ACK.search(text).group(1)
    r = client.post(path)
    assert r.status_code == 200 and r.json["state"] == "acknowledged"
    assert client.post(path).json["acknowledged_at"] == r.json["acknowledged_at"]  # idempotent
    assert states(client, headers, req["id"])["mailer"]["state"] == "acknowledged"
    assert client.post("/governance/erasure-acks/not-a-token").status_code == 404
    [token] = [p for p in client.get("/openapi.json").json["paths"]["/governance/erasure-acks/{token}"]["parameters"]
               if p["name"] == "token"]
    assert len(path.rsplit("/", 1)[1]) <= token["schema"]["maxLength"] == 64
    with fan_app.extensions["db"].session() as session:
        trail = json.dumps([e.details for e in session.scalars(select(AuditEvent).where(
            AuditEvent.action.like("governance.erasure_notice%")))])
    assert "mailer.example" not in trail and "user_id" not in trail and path.rsplit("/", 1)[1] not in trail


def test_a_link_token_longer_than_its_maxlength_is_a_json_404(client):
    """The document bounds the link's token (maxLength): a longer one, as long as a signed ROPA snapshot even,
    names nothing and gets the API's JSON error, not a server's HTML page."""
    for n in (65, 70_000):
        r = client.post("/governance/erasure-acks/" + "a" * n)
        assert r.status_code == 404 and r.json["code"] == 404


def test_unacknowledged_after_n_days_is_a_finding_until_acknowledged(fan_app, headers, smtp, receivers):
    client = fan_app.test_client()
    down = receivers([500] * 10)
    register(client, headers, "mailer", ["contact"], erasure_email="privacy@mailer.example")
    register(client, headers, "down", ["contact"], erasure_webhook=down.url)
    req = erase(client, headers, "5")
    wait_for(lambda: smtp.handler.messages)
    shown = states(client, headers, req["id"])
    assert shown["down"]["state"] == "failed" and shown["down"]["attempts"] == 4
    assert shown["down"]["last_error"] == "HTTP 500"

    def found() -> dict[str, Any]:
        r = client.get("/v1/governance/findings?kind=erasure_notice_unacknowledged", headers=headers)
        return {f["details"]["processor"]: f for f in r.json}

    assert found() == {}
    with fan_app.extensions["db"].session() as session:  # a week and a day later
        session.execute(update(ErasureNotice).values(created_at=utcnow() - timedelta(days=8)))
    assert set(found()) == {"mailer", "down"}
    assert found()["mailer"]["details"]["request"] == req["id"]
    client.post(ACK.search(smtp.handler.messages[0].get_body(("plain",)).get_content()).group(1))
    assert set(found()) == {"down"}


def test_another_app_sees_404_a_replay_sends_nothing_and_a_dead_worker_s_notice_is_sent_again(
        fan_app, headers, receivers):
    client = fan_app.test_client()
    crm = receivers()
    register(client, headers, "crm", ["contact"], erasure_webhook=crm.url)
    req = erase(client, headers, "6")
    wait_for(crm.accepted)
    other = key(fan_app, "other-app", ALL)
    assert client.get(f"/v1/requests/{req['id']}/processors", headers=other).status_code == 404
    assert client.get("/v1/requests/nope/processors", headers=headers).status_code == 404
    rt = fan_app.extensions["runtime"]
    with rt.db.session() as session:
        event = ErasureCompleted(request_id=req["id"], app_id=session.scalar(select(ErasureNotice.app_id)),
                                 status="completed", categories=frozenset({"contact"}), identity={"user_id": "6"})
        assert fanout.on_erasure_completed(rt, session, event) == []
    assert fanout.sweep(rt) == {"taken_back": 0, "enqueued": 0}
    assert len(crm.received) == 1
    # A worker that died mid-POST leaves the notice `sending`: once its lease lapsed the sweep sends it again,
    # under the same notice id (the receiver drops the duplicate), and it ends acknowledged.
    with rt.db.session() as session:
        session.execute(update(ErasureNotice).values(state="sending", acknowledged_at=None,
                                                     lease_until=utcnow() - timedelta(seconds=1)))
    assert fanout.sweep(rt) == {"taken_back": 1, "enqueued": 1}
    assert len(crm.received) == 2 and len({r["headers"]["X-Privacy-Notice"] for r in crm.received}) == 1
    assert states(client, headers, req["id"])["crm"]["state"] == "acknowledged"



def test_on_real_workers_a_notice_lost_from_redis_is_sent_again_from_the_database(
        worker_config, tmp_path, start_worker, receivers, redis_url):
    """The production shape: a `dsar` worker closes the erasure; the webhook job is lost from Redis before any
    `default` worker runs; the sweep finds the notice in the database and a worker delivers it, once."""
    from redis import Redis

    config = {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")}
    apps = _app(config)
    app, workers = next(apps), []
    try:
        client, headers = app.test_client(), key(app, "mi-home", f"{ALL},{GOVERN}")
        crm = receivers()
        register(client, headers, "crm", ["contact"], erasure_webhook=crm.url)
        workers.append(start_worker("dsar", config=config))
        req = erase(client, headers, "2")
        assert states(client, headers, req["id"])["crm"]["state"] == "pending"
        redis = Redis.from_url(redis_url)
        assert redis.delete("rq:queue:default") == 1  # Redis lost the queued delivery
        redis.close()
        workers.append(start_worker("default", config=config))
        assert fanout.sweep(app.extensions["runtime"]) == {"taken_back": 0, "enqueued": 1}
        wait_for(lambda: states(client, headers, req["id"])["crm"]["state"] == "acknowledged")
        assert len(crm.received) == 1
        assert fanout.sweep(app.extensions["runtime"]) == {"taken_back": 0, "enqueued": 0}
    finally:
        for proc in workers:  # before the tables are emptied
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        next(apps, None)
