"""A PostgreSQL restart or outage, on a server of the test's own: the first request after the server is back
succeeds, and a request during the outage answers 503 with Retry-After, never 500, on the ORM routes and on the
status fast path (whose connections are kept per thread, outside the pool)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from tests.service.conftest import PG_POLICY as POLICY

THREADS = 4
STATUS = "/v1/consents/status?subject_id=user-1&policy=privacy"
CONSENT = {"subject_id": "user-1", "policy": "privacy", "version": "1", "purposes": {"core": True},
           "channel": "web", "locale": "en"}


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


def _requests(app: Flask, pg_headers: dict[str, str]) -> list[tuple[str, int]]:
    """A status check (fast path once the key is cached), a consent (ORM and the kept connection), a listing."""
    client = app.test_client()
    return [("status", client.get(STATUS, headers=pg_headers).status_code),
            ("consent", client.post("/v1/consents", json=CONSENT, headers=pg_headers).status_code),
            ("policies", client.get("/v1/policies", headers=pg_headers).status_code)]


UNKNOWN_KEY = f"Bearer psk_{'a' * 16}_{'b' * 43}"  # well-formed: only the database can tell it is unknown
OK = [("status", 200), ("consent", 201), ("policies", 200)]


def _fast_path_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "fast path failed" in r.getMessage()]


def test_the_first_requests_after_a_restart_succeed(pg_app, pg_headers, throwaway_postgres, workers, caplog):
    client = pg_app.test_client()
    assert workers(lambda: _requests(pg_app, pg_headers)) == [OK] * THREADS
    assert client.get(STATUS, headers=pg_headers).status_code == 200
    throwaway_postgres.restart()
    caplog.set_level(logging.WARNING)
    # The very first request on this thread's kept connection, answered by the fast path itself.
    assert client.get(STATUS, headers=pg_headers).status_code == 200
    assert _fast_path_failures(caplog) == []
    r = client.post("/v1/policies", json={**POLICY, "key": "after-restart"}, headers=pg_headers)
    assert r.status_code == 201, r.json
    assert client.get("/readyz").status_code == 200
    # Every other thread's first requests, on its kept connection and on pooled ones.
    assert workers(lambda: _requests(pg_app, pg_headers)) == [OK] * THREADS
    assert _fast_path_failures(caplog) == []


def _unavailable(r: Any) -> bool:
    return (r.status_code == 503 and r.headers.get("Retry-After", "").isdigit() and r.is_json
            and r.json["code"] == 503 and bool(r.json["message"]))


def test_an_outage_answers_503_with_retry_after_then_recovers(pg_app, pg_headers, throwaway_postgres, workers):
    client = pg_app.test_client()
    assert workers(lambda: _requests(pg_app, pg_headers)) == [OK] * THREADS
    throwaway_postgres.stop()
    try:
        answers = {
            "status (fast path, then the route)": client.get(STATUS, headers=pg_headers),
            "record consent": client.post("/v1/consents", json=CONSENT, headers=pg_headers),
            "create policy": client.post("/v1/policies", json={**POLICY, "key": "during"}, headers=pg_headers),
            "list policies": client.get("/v1/policies", headers=pg_headers),
            "submit request": client.post("/v1/requests", headers=pg_headers, json={
                "type": "access", "subject": {"user_id": "u1"}, "jurisdiction": "GDPR", "verified": True}),
            "an uncached key": client.get("/v1/policies", headers={"Authorization": UNKNOWN_KEY}),
        }
        assert {name: r.status_code for name, r in answers.items() if not _unavailable(r)} == {}
        other_threads = workers(lambda: [c for _, c in _requests(pg_app, pg_headers)])
        assert other_threads == [[503, 503, 503]] * THREADS
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"].startswith("error")
        assert ready.json["status"] == "not ready" and ready.json["down"] == ["database"]
    finally:
        throwaway_postgres.start()
    assert client.get(STATUS, headers=pg_headers).status_code == 200
    assert client.post("/v1/consents", json=CONSENT, headers=pg_headers).status_code == 201
    assert client.get("/readyz").status_code == 200
    assert workers(lambda: _requests(pg_app, pg_headers)) == [OK] * THREADS
