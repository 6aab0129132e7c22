"""The files and redis plugins beyond the contract: what a hostile identity value can reach, and formats."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from service.stores import build_registry
from tests.service.stores.conftest import NOW, STORES_REDIS_URL


@pytest.fixture
def uploads(context, tmp_path):
    root = tmp_path / "root"
    for rel in ("u/1/a.jpg", "u/10/b.jpg", "u/1/deep/c.jpg", "secret.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    os.symlink(root / "secret.txt", root / "u" / "1" / "link.txt")
    store = build_registry([{"name": "up", "plugin": "files", "root": str(root),
                             "paths": [{"template": "u/{user_id}/**", "category": "photos"}]}], context).get("up")
    return store, root


def test_files_access_streams_contents_and_ignores_symlinks(uploads):
    store, _ = uploads
    records = sorted(store.access({"user_id": "1"}), key=lambda r: r.source)
    assert [r.source for r in records] == ["u/1/a.jpg", "u/1/deep/c.jpg"]
    with records[0].content() as fh:
        assert fh.read() == b"u/1/a.jpg"
    assert records[0].fields["size"] == 9


@pytest.mark.parametrize("value", ["..", ".", "1/..", "*", "1*", "[1]", "../root", "1\x00"])
def test_files_identity_values_cannot_reach_other_paths(uploads, value):
    store, root = uploads
    assert list(store.access({"user_id": value})) == []
    assert store.erase({"user_id": value}) == {"photos": 0}
    assert (root / "u" / "10" / "b.jpg").exists() and (root / "secret.txt").exists()
    assert (root / "u" / "1" / "a.jpg").exists()


def test_files_erase_removes_the_subjects_empty_folders(uploads):
    store, root = uploads
    assert store.erase({"user_id": "1"}) == {"photos": 2}
    assert not (root / "u" / "1" / "deep").exists() and (root / "u" / "1" / "link.txt").is_symlink()
    assert (root / "u" / "10" / "b.jpg").exists() and (root / "u").is_dir()


@pytest.fixture
def sessions(context, redis_client, redis_prefix):
    store = build_registry([{"name": "kv", "plugin": "redis", "url": STORES_REDIS_URL, "prefix": redis_prefix,
                             "keys": [{"template": "s:{user_id}:*", "category": "sessions",
                                       "timestamp_field": "at"},
                                      {"template": "cart:{user_id}", "category": "carts"}]}], context).get("kv")
    old, new = int((NOW - timedelta(days=40)).timestamp()), int(NOW.timestamp())
    redis_client.hset(f"{redis_prefix}s:1:a", mapping={"at": old, "ip": "192.0.2.1"})
    redis_client.set(f"{redis_prefix}s:1:b", json.dumps({"at": old, "device": "tablet"}))
    redis_client.set(f"{redis_prefix}s:1:c", "no timestamp here")
    redis_client.hset(f"{redis_prefix}s:10:a", mapping={"at": new})
    redis_client.hset(f"{redis_prefix}s:1*:a", mapping={"at": old})
    redis_client.sadd(f"{redis_prefix}cart:1", "sku-1", "sku-2")
    yield store
    store.close()


def test_redis_values_by_type_and_escaped_patterns(sessions, redis_prefix):
    found = {r.fields["key"].removeprefix(redis_prefix): r.fields for r in sessions.access({"user_id": "1"})}
    assert set(found) == {"s:1:a", "s:1:b", "s:1:c", "cart:1"}  # not s:10:a, not s:1*:a
    assert found["s:1:a"]["value"] == {"at": int((NOW - timedelta(days=40)).timestamp()), "ip": "192.0.2.1"}
    assert found["s:1:b"]["value"]["device"] == "tablet" and found["cart:1"]["value"] == ["sku-1", "sku-2"]
    assert [r.fields["key"] for r in sessions.access({"user_id": "1*"})] == [f"{redis_prefix}s:1*:a"]


def test_redis_expire_reads_hash_and_json_timestamps_and_leaves_keys_without_one(sessions, redis_client,
                                                                                 redis_prefix):
    cutoff = NOW - timedelta(days=30)
    assert sum(sessions.expire("sessions", cutoff, dry_run=True)) == 3
    assert sum(sessions.expire("sessions", cutoff, exclude_subjects=[{"user_id": "1*"}])) == 2
    left = sorted(k.decode().removeprefix(redis_prefix) for k in redis_client.scan_iter(match=redis_prefix + "*"))
    assert left == sorted(["cart:1", "s:10:a", "s:1*:a", "s:1:c"])
    assert list(sessions.expire("carts", cutoff)) == []  # no timestamp field: left to Redis's own TTLs
