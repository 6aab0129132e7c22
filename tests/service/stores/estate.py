"""The demo estate for tests: a registry over examples/estate.toml on a given database, and expectations."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.stores import demo
from service.stores.conformance import Subject, Window
from service.stores.options import StoreContext
from service.stores.registry import DEMO_ESTATE, Registry, _build, declarations
from tests.service.stores.conftest import HASH_KEY, NOW

PEOPLE, SEED = 12, 4242
REDIS_ESTATE = DEMO_ESTATE.parent / "estate-redis.toml"
CUTOFFS = {"device_log": NOW - timedelta(days=90), "orders": NOW - timedelta(days=365),
           "location": NOW - timedelta(days=2 * 365), "photos": NOW - timedelta(days=2 * 365),
           "avatars": NOW - timedelta(days=4 * 365), "sessions": NOW - timedelta(days=30)}


@contextmanager
def estate(sql_url: str, instance: Path, extra_env: dict[str, str] | None = None,
           files: tuple[Path, ...] = (DEMO_ESTATE,), redis_prefix: str | None = None) -> Iterator[Registry]:
    env = {"DEMO_PHOTOS_DATABASE_URL": sql_url, **(extra_env or {})}
    ctx = StoreContext(base_dir=DEMO_ESTATE.parent, instance_path=instance, environ=env, hash_key=HASH_KEY)
    entries = []
    for path in files:
        with path.open("rb") as fh:
            entries += declarations(tomllib.load(fh), replace(ctx, base_dir=path.parent))
    if redis_prefix is not None:  # tests share a Redis database: each gets a namespace of its own
        entries = [({**d, "prefix": redis_prefix} if d["plugin"] == "redis" else d, c) for d, c in entries]
    registry = _build(entries)
    try:
        demo.seed(registry, PEOPLE, seed_value=SEED, now=NOW)
        yield registry
    finally:
        registry.close()


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def sql_subjects(category: str) -> list[Subject]:
    """What the seeder put in the SQL store per person, with its records of `category` older than the cutoff."""
    cutoff = _naive(CUTOFFS[category])
    subjects = []
    for p in demo.people(PEOPLE, SEED, NOW):
        counts = {"contact": 1, "photos": len(p.albums) + len(p.photos), "location": len(p.photos),
                  "device_log": len(p.logs), "orders": len(p.orders)}
        old_photos = [x for x in p.photos if x["created_at"] < cutoff]
        old = {
            "device_log": sum(x["logged_at"] < cutoff for x in p.logs),
            "orders": sum(x["ordered_at"] < cutoff for x in p.orders),
            "location": len(old_photos),
            "photos": len(old_photos) + sum(
                a["created_at"] < cutoff and all(x["created_at"] < cutoff for x in p.photos
                                                 if x["album_id"] == a["id"]) for a in p.albums),
        }[category]
        subjects.append(Subject({"user_id": str(p.user["id"]), "email": p.user["email"]}, counts, old))
    return _first(subjects, lambda s: s.old > 0 and s.counts["orders"] > 0)


def file_subjects(category: str) -> list[Subject]:
    cutoff = _naive(CUTOFFS[category])
    subjects = []
    for p in demo.people(PEOPLE, SEED, NOW):
        avatar = p.user["id"] % 2
        counts = {"photos": len(p.photos), "avatars": avatar}
        old = {"photos": sum(x["created_at"] < cutoff for x in p.photos),
               "avatars": avatar * (p.user["created_at"] < cutoff)}[category]
        subjects.append(Subject({"user_id": str(p.user["id"])}, counts, old))
    return _first(subjects, lambda s: s.old > 0 and s.counts["avatars"] > 0)


def redis_subjects(category: str) -> list[Subject]:
    cutoff = CUTOFFS[category].timestamp()
    subjects = []
    for p in demo.people(PEOPLE, SEED, NOW):
        counts = {"sessions": len(p.sessions), "search_history": 1 if p.searches else 0}
        old = sum(int(created) < cutoff for _, created in p.sessions)
        subjects.append(Subject({"user_id": str(p.user["id"])}, counts, old))
    return _first(subjects, lambda s: s.old > 0 and s.counts["search_history"] > 0)


def _first(subjects: list[Subject], good: object) -> list[Subject]:
    """Put a subject that has what every test needs first (the one the tests act on)."""
    chosen = next(s for s in subjects if good(s))  # type: ignore[operator]
    return [chosen, *(s for s in subjects if s is not chosen)]


def _window(category: str, records: list[tuple[datetime, Mapping[str, str]]]) -> Window:
    """A Window over seeded (record time, identity) pairs: the middle half of the record times, in whole seconds,
    and edges at two records of whole-second times (none where every time has a fraction)."""

    def expect(since: datetime, until: datetime) -> list[Mapping[str, str]]:
        found = {tuple(sorted(i.items())) for t, i in records if since <= t < until}
        return [dict(i) for i in sorted(found)]

    times = sorted(t for t, _ in records)
    since, until = (times[len(times) * q // 4].replace(microsecond=0) for q in (1, 3))
    whole = [t for t in times if t.microsecond == 0]
    return Window(category, since, until, expect, edges=[whole[len(whole) // 3], whole[-1]] if whole else [])


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def sql_window(category: str) -> Window:
    """What the SQL store holds of `category` per person: each record's time and the identity it can read."""
    records: list[tuple[datetime, Mapping[str, str]]] = []
    for p in demo.people(PEOPLE, SEED, NOW):
        uid = {"user_id": str(p.user["id"])}
        rows = {"contact": [(p.user["last_seen_at"], {**uid, "email": p.user["email"], "phone": p.user["phone"]})],
                "orders": [(o["ordered_at"], {**uid, "email": o["email"]}) for o in p.orders],
                "device_log": [(x["logged_at"], uid) for x in p.logs],
                "location": [(x["created_at"], uid) for x in p.photos],
                "photos": [(x["created_at"], uid) for x in p.photos + p.albums]}[category]
        records += [(_utc(t), i) for t, i in rows]
    return _window(category, records)


def file_window(category: str) -> Window:
    records: list[tuple[datetime, Mapping[str, str]]] = []
    for p in demo.people(PEOPLE, SEED, NOW):
        uid = {"user_id": str(p.user["id"])}
        if category == "photos":
            records += [(_utc(x["created_at"]), uid) for x in p.photos]
        elif p.user["id"] % 2:
            records.append((_utc(p.user["created_at"]), uid))
    return _window(category, records)


def redis_window() -> Window:
    return _window("sessions", [(datetime.fromtimestamp(int(created), UTC), {"user_id": str(p.user["id"])})
                                for p in demo.people(PEOPLE, SEED, NOW) for _, created in p.sessions])
