"""The assessment over the demo estate (sql + files + redis) with a time window: exact counts against the seeded
data and deduplication across stores, through the stores' `subjects` operation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from privacy import create_app
from service.stores import demo
from tests.conftest import ROOT, _truncate

STORES_REDIS_URL = os.environ.get("TEST_STORES_REDIS_URL", "redis://127.0.0.1:6379/13")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PEOPLE = 30


@pytest.fixture
def estate_app(base_config: dict[str, str], tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "privacy.toml"
    path.write_text(f'include_stores = ["{ROOT / "examples" / "estate-redis.toml"}"]\n')
    Redis.from_url(STORES_REDIS_URL).flushdb()
    app = create_app({**base_config, "PRIVACY_CONFIG": str(path), "REDIS_URL": STORES_REDIS_URL})
    app.config["TESTING"] = True
    # The sessions store reads REDIS_URL; the app's jobs must still run in-process for this test.
    app.extensions["runtime"].queue = app.extensions["queue"] = _inline(app)
    demo.seed(app.extensions["stores"], PEOPLE, seed_value=15, now=NOW)
    yield app
    _truncate(app)
    app.extensions["stores"].close()
    app.extensions["db"].dispose()
    Redis.from_url(STORES_REDIS_URL).flushdb()


def _inline(app: Flask):
    from service.jobs import InProcessQueue
    from service.runtime import use_runtime

    return InProcessQueue(lambda: use_runtime(app.extensions["runtime"]))


def _aware(value: datetime | str) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite hands text back
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_demo_estate_counts_and_dedup(estate_app, make_key):
    since, until = NOW - timedelta(days=30), NOW - timedelta(days=5)
    stores = estate_app.extensions["stores"]
    with stores.get(demo.SQL_STORE).engine.connect() as conn:
        logs = {str(u) for u, at in conn.execute(sa.text("SELECT user_id, logged_at FROM device_logs"))
                if since <= _aware(at) < until}
        contacts = {str(u) for u, at in conn.execute(sa.text("SELECT id, last_seen_at FROM users"))
                    if since <= _aware(at) < until}
    kv = stores.get(demo.REDIS_STORE)
    sessions = set()
    for key in kv.client.scan_iter(match=f"{kv.prefix}session:*"):
        created = datetime.fromtimestamp(int(kv.client.hget(key, "created_at")), UTC)
        if since <= created < until:
            sessions.add(key.decode().split(":")[2])
    headers = make_key("cloud", "incidents:manage")
    client = estate_app.test_client()
    scope = [{"store": demo.SQL_STORE, "category": "device_log"}, {"store": demo.SQL_STORE, "category": "contact"},
             {"store": demo.REDIS_STORE, "category": "sessions"}]
    r = client.post("/v1/incidents", headers=headers, json={
        "title": "Log export leaked", "description": "x", "discovered_at": NOW.isoformat(),
        "occurred_from": since.isoformat(), "occurred_until": until.isoformat(), "scope": scope,
        "jurisdictions": ["GDPR"]})
    assert r.status_code == 201, r.json
    run = client.post(f"/v1/incidents/{r.json['id']}/assessment-runs", headers=headers).json
    report = client.get(f"/v1/incidents/{r.json['id']}/assessment-runs/{run['id']}", headers=headers).json
    assert report["state"] == "succeeded", report
    counts = {(s["store"], s["category"]): s["subjects"] for s in report["stores"]}
    assert counts == {(demo.SQL_STORE, "device_log"): len(logs), (demo.SQL_STORE, "contact"): len(contacts),
                      (demo.REDIS_STORE, "sessions"): len(sessions)}
    assert report["distinct_subjects"] == len(logs | contacts | sessions)
    assert report["with_contact"] == len(contacts)
