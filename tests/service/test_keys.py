"""API keys' lifecycle: an expiry honoured by the database lookup and by the key cache, rotation with an overlap,
the last use written at most once a minute, and a listing that never shows a secret."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select, update

from service.audit import AuditEvent
from service.db import utcnow
from service.tenancy import ApiKey, create_app_tenant, create_key
from tests.conftest import wait_for

HOLDS = "/v1/holds"
STATUS = "/v1/consents/status?subject_id=u1&policy=privacy"


def _key(app, scopes: str = "dsar:manage", **options) -> tuple[str, dict[str, str]]:
    with app.extensions["db"].session() as session:
        if session.scalar(select(ApiKey.id).limit(1)) is None:
            create_app_tenant(session, "shop")
        row, secret = create_key(session, "shop", frozenset(scopes.split(",")), **options)
    return row.key_id, {"Authorization": f"Bearer {secret}"}


def _row(app, key_id: str) -> ApiKey:
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))


def test_an_expired_key_stops_working_even_when_cached(app, client):
    _, headers = _key(app, expires_at=utcnow() + timedelta(seconds=2))
    assert client.get(HOLDS, headers=headers).status_code == 200  # looked up, now in the key cache
    time.sleep(2.1)
    refused = client.get(HOLDS, headers=headers)
    assert refused.status_code == 401 and "expired" in refused.json["message"]
    app.extensions["key_cache"].clear()
    assert client.get(HOLDS, headers=headers).status_code == 401  # and by the database lookup


def test_rotation_overlaps_then_the_old_key_expires(app, client):
    old_id, old = _key(app, label="crm")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate", old_id, "--overlap", "1"])
    assert result.exit_code == 0, result.output
    new = {"Authorization": f"Bearer {result.stdout.strip()}"}
    assert client.get(HOLDS, headers=old).status_code == 200 and client.get(HOLDS, headers=new).status_code == 200
    rotated = _row(app, old_id)
    assert timedelta(minutes=59) < rotated.expires_at - utcnow() <= timedelta(hours=1)
    with app.extensions["db"].sessions() as session:
        successor = session.scalar(select(ApiKey).where(ApiKey.replaces == old_id))
        audited = session.scalar(select(AuditEvent).where(AuditEvent.action == "key.rotated"))
    assert successor.label == "crm" and successor.scopes == rotated.scopes and successor.expires_at is None
    assert audited.details["replaced_by"] == successor.key_id and result.stdout.strip() not in str(audited.details)
    # No overlap: the old key (the new one, rotated again) stops at once, cached or not.
    again = runner.invoke(args=["keys", "rotate", successor.key_id, "--overlap", "0"])
    assert again.exit_code == 0, again.output
    # Announced to every process as a revocation (on PostgreSQL a NOTIFY, which arrives a moment later).
    wait_for(lambda: client.get(HOLDS, headers=new).status_code == 401, timeout=2, interval=0.005)
    assert runner.invoke(args=["keys", "rotate", successor.key_id]).exit_code != 0  # expired: nothing to rotate
    assert runner.invoke(args=["keys", "rotate", "0123456789abcdef"]).exit_code != 0


def test_last_use_is_written_at_most_once_a_minute(app, client, make_key):
    key_id, headers = _key(app)
    assert _row(app, key_id).last_used_at is None
    assert client.get(HOLDS, headers=headers).status_code == 200
    first = _row(app, key_id).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    for _ in range(3):
        assert client.get(HOLDS, headers=headers).status_code == 200
    assert _row(app, key_id).last_used_at == first  # not a write per call
    # Another process's write of a minute ago is not repeated either: the database keeps the rule too.
    app.extensions["key_usage"]._written.clear()
    assert client.get(HOLDS, headers=headers).status_code == 200
    assert _row(app, key_id).last_used_at == first
    with app.extensions["db"].session() as session:
        session.execute(update(ApiKey).where(ApiKey.key_id == key_id)
                        .values(last_used_at=first - timedelta(minutes=5)))
    app.extensions["key_usage"]._written.clear()
    assert client.get(HOLDS, headers=headers).status_code == 200
    assert _row(app, key_id).last_used_at > first


def test_the_consent_status_fast_path_records_use_too(app, client):
    key_id, headers = _key(app, "consent:read")
    client.get(STATUS, headers=headers)  # a 404 (no such policy) answered by the route: the key was used
    client.get(STATUS, headers=headers)  # now served from the key cache by the fast path
    assert _row(app, key_id).last_used_at is not None


def test_keys_list_shows_no_secret_and_each_state(app, client):
    active_id, active = _key(app, label="web")
    gone_id, _ = _key(app, label="old")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["keys", "revoke", gone_id]).exit_code == 0
    made = runner.invoke(args=["keys", "create", "--app", "shop", "--scopes", "consent:read", "--expires-in", "30"])
    assert made.exit_code == 0 and "expires" in made.stderr
    listed = runner.invoke(args=["keys", "list", "--app", "shop"])
    assert listed.exit_code == 0
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    assert lines[active_id][2] == "web" and lines[active_id][-1] == "active"
    assert lines[gone_id][-1] == "revoked"
    assert made.stdout.strip() not in listed.stdout and active["Authorization"][7:] not in listed.stdout
    assert runner.invoke(args=["keys", "create", "--app", "shop", "--scopes", "consent:read",
                               "--expires-in", "0"]).exit_code != 0
