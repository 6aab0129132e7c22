"""A PostgreSQL restart or outage, on a server of the test's own: the first request after the server is back
succeeds, and a request during the outage answers 503 with Retry-After, never 500, on the ORM routes and on the
status fast path (whose connections are kept per thread, outside the pool)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask

from privacy import create_app
from service.cli import alembic_config
from service.tenancy import create_app_tenant, create_key

THREADS = 4
STATUS = "/v1/consents/status?subject_id=user-1&policy=privacy"
POLICY = {"key": "privacy", "title": "Privacy", "purposes": [{"key": "core", "description": "Run the service"}]}
CONSENT = {"subject_id": "user-1", "policy": "privacy", "version": "1", "purposes": {"core": True},
           "channel": "web", "locale": "en"}


@pytest.fixture
def pg_app(throwaway_postgres: Any, tmp_path: Path) -> Iterator[Flask]:
    """The app on the throwaway server, not in TESTING mode: an error answers as in production."""
    command.upgrade(alembic_config(throwaway_postgres.url), "head")
    app = create_app({"DATABASE_URL": throwaway_postgres.url, "INSTANCE_PATH": str(tmp_path)})
    yield app
    app.extensions["db"].dispose()


@pytest.fixture
def headers(pg_app: Flask) -> dict[str, str]:
    with pg_app.extensions["db"].session() as session:
        create_app_tenant(session, "app-a")
        _, secret = create_key(session, "app-a", frozenset({"admin", "consent:read", "consent:write",
                                                             "dsar:submit", "dsar:manage"}))
    headers = {"Authorization": f"Bearer {secret}"}
    client = pg_app.test_client()
    assert client.post("/v1/policies", json=POLICY, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True},
                       headers=headers).status_code == 201
    return headers


@pytest.fixture
def workers() -> Iterator[Callable[[Callable[[], Any]], list[Any]]]:
    """on_each(fn) runs fn once on each of THREADS long-lived threads (the same threads every time, as a
    server's), so each keeps its own fast-path connection across the restart; returns their results."""
    pool = ThreadPoolExecutor(THREADS)

    def on_each(fn: Callable[[], Any]) -> list[Any]:
        barrier = threading.Barrier(THREADS)  # THREADS tasks that wait for each other take THREADS threads

        def task() -> Any:
            barrier.wait(timeout=30)
            return fn()

        return [f.result(timeout=60) for f in [pool.submit(task) for _ in range(THREADS)]]

    yield on_each
    pool.shutdown()


def _requests(app: Flask, headers: dict[str, str]) -> list[tuple[str, int]]:
    """A status check (fast path once the key is cached), a consent (ORM and the kept connection), a listing."""
    client = app.test_client()
    return [("status", client.get(STATUS, headers=headers).status_code),
            ("consent", client.post("/v1/consents", json=CONSENT, headers=headers).status_code),
            ("policies", client.get("/v1/policies", headers=headers).status_code)]


UNKNOWN_KEY = f"Bearer psk_{'a' * 16}_{'b' * 43}"  # well-formed: only the database can tell it is unknown
OK = [("status", 200), ("consent", 201), ("policies", 200)]


def _fast_path_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "fast path failed" in r.getMessage()]


def test_the_first_requests_after_a_restart_succeed(pg_app, headers, throwaway_postgres, workers, caplog):
    client = pg_app.test_client()
    assert workers(lambda: _requests(pg_app, headers)) == [OK] * THREADS
    assert client.get(STATUS, headers=headers).status_code == 200
    throwaway_postgres.restart()
    caplog.set_level(logging.WARNING)
    # The very first request on this thread's kept connection, answered by the fast path itself.
    assert client.get(STATUS, headers=headers).status_code == 200
    assert _fast_path_failures(caplog) == []
    r = client.post("/v1/policies", json={**POLICY, "key": "after-restart"}, headers=headers)
    assert r.status_code == 201, r.json
    assert client.get("/readyz").status_code == 200
    # Every other thread's first requests, on its kept connection and on pooled ones.
    assert workers(lambda: _requests(pg_app, headers)) == [OK] * THREADS
    assert _fast_path_failures(caplog) == []


def _unavailable(r: Any) -> bool:
    return (r.status_code == 503 and r.headers.get("Retry-After", "").isdigit() and r.is_json
            and r.json["code"] == 503 and bool(r.json["message"]))


def test_an_outage_answers_503_with_retry_after_then_recovers(pg_app, headers, throwaway_postgres, workers):
    client = pg_app.test_client()
    assert workers(lambda: _requests(pg_app, headers)) == [OK] * THREADS
    throwaway_postgres.stop()
    try:
        answers = {
            "status (fast path, then the route)": client.get(STATUS, headers=headers),
            "record consent": client.post("/v1/consents", json=CONSENT, headers=headers),
            "create policy": client.post("/v1/policies", json={**POLICY, "key": "during"}, headers=headers),
            "list policies": client.get("/v1/policies", headers=headers),
            "submit request": client.post("/v1/requests", headers=headers, json={
                "type": "access", "subject": {"user_id": "u1"}, "jurisdiction": "GDPR", "verified": True}),
            "an uncached key": client.get("/v1/policies", headers={"Authorization": UNKNOWN_KEY}),
        }
        assert {name: r.status_code for name, r in answers.items() if not _unavailable(r)} == {}
        other_threads = workers(lambda: [c for _, c in _requests(pg_app, headers)])
        assert other_threads == [[503, 503, 503]] * THREADS
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"].startswith("error")
    finally:
        throwaway_postgres.start()
    assert client.get(STATUS, headers=headers).status_code == 200
    assert client.post("/v1/consents", json=CONSENT, headers=headers).status_code == 201
    assert client.get("/readyz").status_code == 200
    assert workers(lambda: _requests(pg_app, headers)) == [OK] * THREADS
