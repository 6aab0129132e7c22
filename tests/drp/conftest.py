"""DRP fixtures: an authorised agent with a real Ed25519 key signing libsodium combined-mode messages, and a real
HTTP server receiving its status callbacks."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Flask
from flask.testing import FlaskClient

from tests.dsar.conftest import dsar_app, dsar_config, dsar_worker, inline_app, key_for  # noqa: F401

BUSINESS = "MI_HOME"
API = "/drp/v1"


class Agent:
    """An authorised agent as the protocol sees it: an id, a signing key, its bearer token once set up."""

    def __init__(self, agent_id: str, business: str = BUSINESS) -> None:
        self.agent_id, self.business = agent_id, business
        self.key = Ed25519PrivateKey.generate()
        self.token: str | None = None

    @property
    def verify_key(self) -> str:
        return base64.b64encode(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()

    def sign(self, claims: dict[str, Any], key: Ed25519PrivateKey | None = None) -> str:
        """libsodium crypto_sign (combined mode): the 64-byte signature, then the message; base64."""
        message = json.dumps(claims).encode()
        return base64.b64encode((key or self.key).sign(message) + message).decode()

    def claims(self, *, lifetime: timedelta = timedelta(minutes=10), issued: datetime | None = None,
               **extra: Any) -> dict[str, Any]:
        now = issued or datetime.now(UTC)
        return {"agent-id": self.agent_id, "business-id": self.business, "issued-at": now.isoformat(),
                "expires-at": (now + lifetime).isoformat(), "drp.version": "1.0", **extra}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "text/plain"}

    def setup(self, client: FlaskClient) -> Any:
        r = client.post(f"{API}/agent/{self.agent_id}", data=self.sign(self.claims()),
                        headers={"Content-Type": "text/plain"})
        if r.status_code == 200:
            self.token = r.json["token"]
        return r

    def exercise(self, client: FlaskClient, exercise: str, **claims: Any) -> Any:
        body = self.sign(self.claims(exercise=exercise, **claims))
        return client.post(f"{API}/data-rights-request", data=body, headers=self.headers())

    def status(self, client: FlaskClient, request_id: str) -> Any:
        return client.get(f"{API}/data-rights-request/{request_id}", headers={"Authorization": f"Bearer {self.token}"})

    def revoke(self, client: FlaskClient, request_id: str, reason: str = "I changed my mind") -> Any:
        return client.delete(f"{API}/data-rights-request/{request_id}",
                             data=self.sign(self.claims(reason=reason)), headers=self.headers())


def register(app: Flask, client: FlaskClient, admin: dict[str, str], agent: Agent, **extra: Any) -> Any:
    return client.post("/v1/drp/agents", headers=admin, json={
        "agent_id": agent.agent_id, "verify_key": agent.verify_key, "business_id": agent.business, **extra})


class Receiver:
    """A real HTTP server on a free port recording each callback's JSON; `fail` answers 500 that many times."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = 0
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail:
                    receiver.fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                with receiver.arrived:
                    receiver.received.append({"content_type": self.headers.get("Content-Type"), **json.loads(body)})
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ignored")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/drp/status"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def statuses(self) -> list[tuple[str, str | None]]:
        return [(c["status"], c.get("reason")) for c in self.received]

    def wait(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
