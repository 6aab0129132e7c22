"""Per-key rate limits on the API: counted per key and scope (never per address), set per scope in PRIVACY_CONFIG,
answered 429 in the API's error shape with Retry-After, the status fast path counted on the same counter, shared
by every web process through Redis, and open (not an outage) while Redis is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder

from consent.fastpath import StatusFastPath
from privacy import create_app
from service import ratelimit
from service.config import ConfigError
from service.tenancy import create_app_tenant, create_key
from tests.conftest import _truncate

STATUS = "/v1/consents/status"
QUERY = "subject_id=user-1&policy=privacy"
POLICY = {"key": "privacy", "title": "Privacy", "purposes": [{"key": "core", "description": "Run the service"}]}
LIMITS = ('[ratelimit]\ndefault = "3 per minute"\n'
          '[ratelimit.scopes]\n"consent:read" = "4 per minute"\n"admin" = "100 per minute"\n')


@pytest.fixture
def limited(base_config: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """limited(toml, **config) -> an app of its own with those limits (memory storage unless a Redis URL is
    given); each is emptied and closed after the test."""
    made: list[Flask] = []

    def make(toml: str = LIMITS, **config: str) -> Flask:
        path = tmp_path / f"privacy{len(made)}.toml"
        path.write_text(toml)
        app = create_app({**base_config, "PRIVACY_CONFIG": str(path), **config})
        made.append(app)
        return app

    yield make
    if made:
        _truncate(made[0])
    for app in made:
        app.extensions["db"].dispose()


def _key(app: Flask, slug: str, scopes: str) -> dict[str, str]:
    from sqlalchemy import select

    from service.tenancy import App

    with app.extensions["db"].session() as session:
        if session.scalar(select(App.id).where(App.slug == slug)) is None:
            create_app_tenant(session, slug)
        _, secret = create_key(session, slug, frozenset(scopes.split(",")))
    return {"Authorization": f"Bearer {secret}"}


def _policy(app: Flask, headers: dict[str, str]) -> None:
    client = app.test_client()
    assert client.post("/v1/policies", json=POLICY, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "v1", "material": True},
                       headers=headers).status_code == 201


def _fast(app: Flask, headers: dict[str, str]) -> Any:
    """The fast path's own answer (body, key id, rate headers), or None when it hands the request to Flask."""
    fast = app.wsgi_app
    assert isinstance(fast, StatusFastPath)
    return fast._answer(EnvironBuilder(path=STATUS, query_string=QUERY, headers=headers).get_environ())


def test_a_key_past_its_limit_gets_429_with_retry_after_and_another_key_is_unaffected(limited):
    app = limited()
    client = app.test_client()
    first, second = _key(app, "shop", "dsar:manage,consent:read"), _key(app, "shop", "dsar:manage")
    for remaining in (2, 1, 0):
        answer = client.get("/v1/holds", headers=first)
        assert answer.status_code == 200
        assert answer.headers["X-RateLimit-Limit"] == "3"
        assert answer.headers["X-RateLimit-Remaining"] == str(remaining)
    refused = client.get("/v1/holds", headers=first)
    assert refused.status_code == 429
    assert refused.json["code"] == 429 and refused.json["status"] == "Too Many Requests"
    assert "dsar:manage" in refused.json["message"]
    assert 0 <= int(refused.headers["Retry-After"]) <= 60
    assert int(refused.headers["X-RateLimit-Reset"]) > 0 and refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["Content-Type"] == "application/json"
    # The same app's other key, from the same address, has its own count.
    other = client.get("/v1/holds", headers=second)
    assert other.status_code == 200 and other.headers["X-RateLimit-Remaining"] == "2"
    # So does the first key's other scope.
    assert client.get("/v1/policies", headers=first).status_code == 200
    # A request without a valid key is refused as before, not counted against anyone.
    assert client.get("/v1/holds").status_code == 401


def test_limits_are_set_per_scope(limited):
    app = limited()
    client = app.test_client()
    key = _key(app, "shop", "dsar:manage,consent:read")
    assert client.get("/v1/policies", headers=key).headers["X-RateLimit-Limit"] == "4"  # consent:read's own
    assert client.get("/v1/holds", headers=key).headers["X-RateLimit-Limit"] == "3"  # the default
    assert app.extensions["api_limits"].config.item("dsar:submit").amount == 3


def test_off_when_disabled_and_declared_in_the_openapi_document(limited):
    app = limited('[ratelimit]\nenabled = false\n')
    assert app.extensions["api_limits"] is None
    client = app.test_client()
    key = _key(app, "shop", "dsar:manage")
    answer = client.get("/v1/holds", headers=key)
    assert answer.status_code == 200 and "X-RateLimit-Limit" not in answer.headers
    operation = client.get("/openapi.json").json["paths"]["/v1/holds"]["get"]
    assert operation["responses"]["429"] == {"$ref": "#/components/responses/TOO_MANY_REQUESTS"}


@pytest.mark.parametrize("toml, named", [
    ({"ratelimit": {"default": "lots"}}, "default"),
    ({"ratelimit": {"default": "3 per minute; 10 per hour"}}, "default"),
    ({"ratelimit": {"scopes": {"consent:reed": "3 per minute"}}}, "consent:reed"),
    ({"ratelimit": {"scopes": {"consent:read": 3}}}, "consent:read"),
    ({"ratelimit": {"enabled": "yes"}}, "enabled"),
    ({"ratelimit": {"per_ip": True}}, "ratelimit"),
])
def test_bad_settings_stop_the_service_naming_them(toml, named):
    with pytest.raises(ConfigError, match=named):
        ratelimit.load(toml)
    assert ratelimit.load({}).default.amount == 6000  # on, at the default, when not configured


def test_the_counts_store_is_redis_when_configured_and_memory_otherwise():
    assert ratelimit.storage_url({}, None) == "memory://"
    assert ratelimit.storage_url({}, "redis://r:6379/0") == "redis://r:6379/0"
    assert ratelimit.storage_url({"RATELIMIT_REDIS_URL": "redis://c:6379/4"}, "redis://r:6379/0") == \
        "redis://c:6379/4"
    assert ratelimit.storage_url({}, "unix:///run/redis.sock") == "redis+unix:///run/redis.sock"
    with pytest.raises(ConfigError, match="RATELIMIT_REDIS_URL"):
        ratelimit.storage_url({"RATELIMIT_REDIS_URL": "http://c:6379"}, None)


def test_the_status_fast_path_counts_on_the_routes_counter(limited):
    app = limited()
    client = app.test_client()
    _policy(app, _key(app, "shop", "admin"))
    reader = _key(app, "shop", "consent:read")
    first = client.get(STATUS, query_string=QUERY, headers=reader)  # not cached yet: the Flask route answers
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "3"
    for remaining in ("2", "1", "0"):
        _, _, headers = _fast(app, reader)
        assert dict(headers)["X-RateLimit-Limit"] == "4" and dict(headers)["X-RateLimit-Remaining"] == remaining
        assert 0 <= int(dict(headers)["Retry-After"]) <= 60
    assert _fast(app, reader) is None  # past the limit: handed to the route, which refuses it
    refused = client.get(STATUS, query_string=QUERY, headers=reader)
    assert refused.status_code == 429 and refused.json["code"] == 429 and "Retry-After" in refused.headers
    # Another key of the same app still reads through the fast path.
    other = _key(app, "shop", "consent:read")
    assert client.get(STATUS, query_string=QUERY, headers=other).status_code == 200
    assert _fast(app, other) is not None


def test_two_web_processes_share_a_keys_count_through_redis(limited, redis_url):
    one, two = limited(REDIS_URL=redis_url), limited(REDIS_URL=redis_url)
    key = _key(one, "shop", "dsar:manage,consent:read,admin")
    answers = [app.test_client().get("/v1/holds", headers=key) for app in (one, two, one)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert two.test_client().get("/v1/holds", headers=key).status_code == 429
    # The fast path of one process and the route of the other spend the same count too.
    _policy(one, key)
    assert two.test_client().get(STATUS, query_string=QUERY, headers=key).status_code == 200  # caches the key
    for _ in range(3):
        assert _fast(two, key) is not None
    assert one.test_client().get(STATUS, query_string=QUERY, headers=key).status_code == 429
    assert _fast(two, key) is None


def test_redis_down_leaves_the_api_up_and_is_logged_once(limited, throwaway_redis, caplog):
    app = limited(RATELIMIT_REDIS_URL=throwaway_redis.url, CACHE_TTL_SECONDS="60")  # the key stays cached
    client = app.test_client()
    _policy(app, _key(app, "shop", "admin"))
    key = _key(app, "shop", "consent:read,dsar:manage")
    assert client.get(STATUS, query_string=QUERY, headers=key).status_code == 200
    throwaway_redis.stop()
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert _fast(app, key) is not None  # answered, unlimited meanwhile
    answers = [client.get("/v1/holds", headers=key).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in warnings if r.name == "service.ratelimit"]) == 1
    assert len([r for r in warnings if r.name == "flask-limiter"]) == 1
    assert all(r.exc_info is None for r in warnings)  # a line, not a traceback per request
    throwaway_redis.start()
    time.sleep(ratelimit.RETRY_STORE_SECONDS + 0.2)  # the fast path leaves the store alone this long
    _, _, headers = _fast(app, key)
    assert dict(headers)["X-RateLimit-Remaining"] == "3"  # counting again, in the (emptied) store
    assert any(r.getMessage() == "rate-limit store reachable again" for r in caplog.records)


def test_the_fast_path_leases_counts_from_redis_and_never_grants_past_the_limit(limited, redis_url):
    from redis import Redis

    toml = '[ratelimit]\n[ratelimit.scopes]\n"consent:read" = "400 per minute"\n'  # leases of 4
    one, two = limited(toml, REDIS_URL=redis_url), limited(toml, REDIS_URL=redis_url)
    _policy(one, _key(one, "shop", "admin"))
    key = _key(one, "shop", "consent:read")
    for app in (one, two):  # each process verifies and caches the key through its route (one count each)
        assert app.test_client().get(STATUS, query_string=QUERY, headers=key).status_code == 200
    store = Redis.from_url(redis_url)
    [counter] = [k for k in store.scan_iter("*consent:read*")]
    assert int(store.get(counter)) == 2
    assert _fast(one, key) is not None
    assert int(store.get(counter)) == 2 + ratelimit.lease_size(400)  # one round trip took a lease of 4
    for _ in range(3):
        assert _fast(one, key) is not None
    assert int(store.get(counter)) == 6  # the lease's other three spent without a round trip
    granted = 2 + 4
    while True:  # the two processes in turn until both are refused
        answers = [_fast(app, key) is not None for app in (one, two)]
        granted += sum(answers)
        if not any(answers):
            break
    assert 400 - 2 * 3 <= granted <= 400
    store.close()


def test_in_memory_the_fast_path_leases_counts_too_and_never_grants_past_the_limit(limited):
    """limits' memory store starts a timer thread at most increments: the fast path takes its counts in leases
    there as well, and a key still gets its limit and no more."""
    toml = '[ratelimit]\n[ratelimit.scopes]\n"consent:read" = "400 per minute"\n'  # leases of 4
    app = limited(toml)
    _policy(app, _key(app, "shop", "admin"))
    key = _key(app, "shop", "consent:read")
    assert app.test_client().get(STATUS, query_string=QUERY, headers=key).status_code == 200  # the route: 1
    storage = app.extensions["api_limits"].limiter.storage
    [counter] = [k for k in storage.storage if "consent:read" in k]
    assert storage.get(counter) == 1
    assert _fast(app, key) is not None
    assert storage.get(counter) == 1 + ratelimit.lease_size(400)  # one increment took a lease of 4
    for _ in range(3):
        assert _fast(app, key) is not None
    assert storage.get(counter) == 5  # the lease's other three spent without touching the store
    for _ in range(4):
        assert _fast(app, key) is not None
    assert storage.get(counter) == 9
    granted = 1 + 8
    while _fast(app, key) is not None:
        granted += 1
    assert granted == 400


def test_the_recording_fast_path_counts_on_the_routes_counter(limited):
    from consent.fastrecord import RecordFastPath

    app = limited('[ratelimit]\ndefault = "100 per minute"\n[ratelimit.scopes]\n"consent:write" = "3 per minute"\n')
    client = app.test_client()
    _policy(app, _key(app, "shop", "admin"))
    writer = _key(app, "shop", "consent:write")
    fast = app.wsgi_app.next
    assert isinstance(fast, RecordFastPath)

    def body(n: int) -> dict[str, Any]:
        return {"subject_id": f"user-{n}", "policy": "privacy", "version": "1.0", "purposes": {"core": True},
                "channel": "web", "locale": "en-GB"}

    first = client.post("/v1/consents", json=body(0), headers=writer)  # not cached yet: the Flask route answers
    assert first.status_code == 201 and first.headers["X-RateLimit-Remaining"] == "2"
    for n, remaining in ((1, "1"), (2, "0")):
        environ = EnvironBuilder(path="/v1/consents", method="POST", json=body(n), headers=writer).get_environ()
        _, _, headers = fast._answer(environ)
        assert dict(headers)["X-RateLimit-Limit"] == "3" and dict(headers)["X-RateLimit-Remaining"] == remaining
    environ = EnvironBuilder(path="/v1/consents", method="POST", json=body(3), headers=writer).get_environ()
    assert fast._answer(environ) is None  # past the limit: handed to the route, which refuses it
    refused = client.post("/v1/consents", json=body(3), headers=writer)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    from sqlalchemy import func, select

    from consent.models import ConsentEvent

    with app.extensions["db"].sessions() as session:  # three recorded, the refused one not
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 3
