"""Redis down (a server of the test's own, never the shared one): the consent API works on as before, and
/readyz names Redis in `down` while staying ready (200, "degraded"), then says "ready" once it is back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from privacy import create_app
from tests.consent.conftest import POLICY

SUBJECT = "user-42"


@pytest.fixture
def redis_app(base_config: dict[str, str], throwaway_redis: Any) -> Iterator[Flask]:
    """The app in production's shape (jobs on RQ) on the throwaway Redis."""
    app = create_app({**base_config, "REDIS_URL": throwaway_redis.url})
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].dispose()


def _consent_api(client: Any, headers: dict[str, str]) -> list[tuple[str, int]]:
    """Every consent operation a product app makes, with its answer's status."""
    answers = [("status before", client.get(f"/v1/consents/status?subject_id={SUBJECT}&policy=privacy",
                                            headers=headers).status_code)]
    r = client.post("/v1/consents", headers=headers, json={
        "subject_id": SUBJECT, "policy": "privacy", "version": "1.0",
        "purposes": {"core": True, "analytics": True, "ads": False}, "channel": "web", "locale": "en"})
    answers.append(("record", r.status_code))
    status = client.get(f"/v1/consents/status?subject_id={SUBJECT}&policy=privacy", headers=headers)
    answers.append(("status after", status.status_code if status.json["consent_required"] is False else -1))
    answers.append(("withdraw", client.post("/v1/consents/withdraw", headers=headers, json={
        "subject_id": SUBJECT, "policy": "privacy", "purposes": ["analytics"]}).status_code))
    history = client.get(f"/v1/subjects/{SUBJECT}/consents", headers=headers)
    answers.append(("history", history.status_code if len(history.json) >= 2 else -1))
    answers.append(("policies", client.get("/v1/policies", headers=headers).status_code))
    return answers


OK = [("status before", 200), ("record", 201), ("status after", 200), ("withdraw", 200), ("history", 200),
      ("policies", 200)]


def test_the_consent_api_works_while_redis_is_down(redis_app, throwaway_redis, make_key):
    client, headers = redis_app.test_client(), make_key("app-a", "admin,consent:read,consent:write")
    assert client.post("/v1/policies", json=POLICY, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "t", "material": True},
                       headers=headers).status_code == 201
    throwaway_redis.stop()
    assert _consent_api(client, headers) == OK


def test_readyz_names_redis_while_it_is_down(redis_app, throwaway_redis):
    client = redis_app.test_client()
    r = client.get("/readyz")
    assert (r.status_code, r.json["status"], r.json["down"], r.json["checks"]["redis"]) == (200, "ready", [], "ok")
    throwaway_redis.stop()
    r = client.get("/readyz")
    assert (r.status_code, r.json["status"], r.json["down"]) == (200, "degraded", ["redis"])
    assert r.json["checks"]["redis"] == "error: ConnectionError" and r.json["checks"]["database"] == "ok"
    throwaway_redis.start()
    r = client.get("/readyz")
    assert (r.status_code, r.json["status"], r.json["down"]) == (200, "ready", [])
