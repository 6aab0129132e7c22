"""The demo estate of "Cloud Photos" (examples/estate.toml): its SQL schema and a deterministic seeder."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.stores.files import FileStore
from service.stores.redis_keys import RedisStore
from service.stores.registry import Registry
from service.stores.sql import SqlStore

SQL_STORE, FILE_STORE, REDIS_STORE = "cloud-photos", "uploads", "sessions"

metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(200), index=True),
    sa.Column("phone", sa.String(40), index=True),
    sa.Column("full_name", sa.String(200)),
    sa.Column("country", sa.String(2)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False, index=True),
)
albums = sa.Table(
    "albums", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("title", sa.String(200)),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
)
photos = sa.Table(
    "photos", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("album_id", sa.ForeignKey("albums.id"), nullable=False, index=True),
    sa.Column("filename", sa.String(200)),
    sa.Column("caption", sa.String(400)),
    sa.Column("latitude", sa.Float),
    sa.Column("longitude", sa.Float),
    sa.Column("taken_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
)
device_logs = sa.Table(
    "device_logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("device_id", sa.String(64)),
    sa.Column("ip_address", sa.String(45)),
    sa.Column("event", sa.String(40)),
    sa.Column("logged_at", sa.DateTime, nullable=False, index=True),
)
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), index=True),
    sa.Column("email", sa.String(200), index=True),
    sa.Column("shipping_address", sa.String(400)),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("ordered_at", sa.DateTime, nullable=False, index=True),
    sa.Column("anonymized_at", sa.DateTime),
)

FIRST = ["Ada", "Bram", "Chloé", "Daan", "Emma", "Farah", "Gijs", "Hana", "Ivo", "Julia", "Kees", "Lotte",
         "Milan", "Noor", "Otto", "Priya", "Quinn", "Ruth", "Sem", "Tess", "Umar", "Vera", "Wout", "Yara", "Zoë"]
LAST = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer", "Bos", "Vos",
        "Peters", "Hendriks", "Dekker", "Brouwer", "Kok", "Verbeek", "Lambert", "Okafor", "Nakamura", "Silva"]
CITIES = [("Amsterdam", 52.37, 4.90), ("Lisbon", 38.72, -9.14), ("Kyoto", 35.01, 135.77),
          ("Lagos", 6.52, 3.38), ("Montréal", 45.50, -73.57), ("Oslo", 59.91, 10.75)]
EVENTS = ["login", "upload", "share", "sync", "logout"]
PNG = b"\x89PNG\r\n\x1a\n"  # enough of a header for a file to look like what it is
JPEG = b"\xff\xd8\xff\xe0"


def create_schema(engine: Engine) -> None:
    """Create the demo tables where missing (the `prepare` hook of the demo's sql store)."""
    metadata.create_all(engine)


@dataclass
class Seeded:
    people: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    keys: int = 0


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass
class _Person:
    user: dict[str, Any]
    albums: list[dict[str, Any]]
    photos: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    sessions: list[tuple[str, float]]
    searches: list[str]


def people(count: int, seed: int, now: datetime) -> Iterator[_Person]:
    """Generated people, the same for the same seed: some long inactive, with old logs and old orders."""
    rng = random.Random(seed)  # noqa: S311 - repeatable demo data, not secrets
    album_id = photo_id = log_id = order_id = 0
    for uid in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = now - timedelta(days=rng.randint(30, 3650))
        # About one in five has not been seen for over three years.
        idle = rng.randint(1100, 1500) if rng.random() < 0.2 else rng.randint(0, 60)
        last_seen = max(created, now - timedelta(days=idle))
        user = {"id": uid, "email": f"{first}.{last}.{uid}@example.com".lower().replace(" ", ""),
                "phone": f"+31 6 {rng.randint(10_000_000, 99_999_999)}", "full_name": f"{first} {last}",
                "country": rng.choice(["NL", "PT", "JP", "NG", "CA", "NO"]),
                "created_at": _naive(created), "last_seen_at": _naive(last_seen)}
        p = _Person(user, [], [], [], [], [], [])
        for _ in range(rng.randint(1, 3)):
            album_id += 1
            city, lat, lon = rng.choice(CITIES)
            made = created + (last_seen - created) * rng.random()
            p.albums.append({"id": album_id, "user_id": uid, "title": f"{city} {made.year}",
                             "created_at": _naive(made)})
            for _ in range(rng.randint(2, 5)):
                photo_id += 1
                shot = made + timedelta(hours=rng.randint(0, 72))
                p.photos.append({"id": photo_id, "album_id": album_id, "filename": f"IMG_{photo_id:06d}.jpg",
                                 "caption": f"{city} with friends", "latitude": round(lat + rng.random() / 50, 5),
                                 "longitude": round(lon + rng.random() / 50, 5), "taken_at": _naive(shot),
                                 "created_at": _naive(shot + timedelta(minutes=5))})
        for _ in range(rng.randint(4, 12)):
            log_id += 1
            p.logs.append({"id": log_id, "user_id": uid, "device_id": f"dev-{rng.getrandbits(48):012x}",
                           "ip_address": f"192.0.2.{rng.randint(1, 254)}", "event": rng.choice(EVENTS),
                           "logged_at": _naive(last_seen - timedelta(days=rng.randint(0, 400)))})
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            order_id += 1
            p.orders.append({"id": order_id, "user_id": uid, "email": user["email"],
                             "shipping_address": f"{rng.randint(1, 200)} Canal Street, {rng.choice(CITIES)[0]}",
                             "total_cents": rng.randint(499, 25_000), "currency": "EUR",
                             "ordered_at": _naive(created + (now - created) * rng.random()), "anonymized_at": None})
        for _ in range(rng.randint(0, 2)):
            p.sessions.append((f"{rng.getrandbits(64):016x}", (now - timedelta(days=rng.randint(0, 90))).timestamp()))
        p.searches = [rng.choice(["sunset", "beach", "cat", "birthday", "snow"]) for _ in range(rng.randint(0, 3))]
        yield p


def seed(registry: Registry, count: int, *, seed_value: int = 27701, now: datetime | None = None,
         chunk: int = 2000) -> Seeded:
    """Replace the demo estate's data with `count` generated people."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    sql = registry.get(SQL_STORE) if SQL_STORE in registry else None
    files = registry.get(FILE_STORE) if FILE_STORE in registry else None
    if not isinstance(sql, SqlStore) or not isinstance(files, FileStore):
        raise ValueError(f"the demo needs the {SQL_STORE} (sql) and {FILE_STORE} (files) stores of "
                         "examples/estate.toml")
    kv = registry.get(REDIS_STORE) if REDIS_STORE in registry else None
    redis = kv.client if isinstance(kv, RedisStore) else None
    prefix = kv.prefix if isinstance(kv, RedisStore) else ""
    result = Seeded(rows={t.name: 0 for t in metadata.sorted_tables})
    _clear(sql.engine, files, redis, prefix)
    batch: dict[str, list[dict[str, Any]]] = {t.name: [] for t in metadata.sorted_tables}
    pipe = redis.pipeline(transaction=False) if redis is not None else None
    for person in people(count, seed_value, now):
        result.people += 1
        batch["users"].append(person.user)
        batch["albums"].extend(person.albums)
        batch["photos"].extend(person.photos)
        batch["device_logs"].extend(person.logs)
        batch["orders"].extend(person.orders)
        result.files += _write_files(files, person)
        if pipe is not None:
            result.keys += _queue_keys(pipe, prefix, person)
        if len(batch["device_logs"]) >= chunk:
            _flush(sql.engine, batch, result)
            if pipe is not None:
                pipe.execute()
    _flush(sql.engine, batch, result)
    if pipe is not None:
        pipe.execute()
    return result


def _flush(engine: Engine, batch: dict[str, list[dict[str, Any]]], result: Seeded) -> None:
    with engine.begin() as conn:
        for table in metadata.sorted_tables:  # parents before children
            rows = batch[table.name]
            if rows:
                conn.execute(table.insert(), rows)
                result.rows[table.name] += len(rows)
                rows.clear()


def _clear(engine: Engine, files: FileStore, redis: Any, prefix: str) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    for folder in ("photos", "avatars"):
        shutil.rmtree(files.root / folder, ignore_errors=True)
    if redis is not None and prefix:
        for keys in _batched(redis.scan_iter(match=prefix + "*", count=1000), 1000):
            redis.unlink(*keys)


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_files(files: FileStore, person: _Person) -> int:
    uid = person.user["id"]
    written = 0
    for photo in person.photos:
        path = files.root / "photos" / str(uid) / str(photo["album_id"]) / photo["filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG + photo["caption"].encode())
        stamp = photo["created_at"].replace(tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
        written += 1
    if uid % 2:
        path = files.root / "avatars" / f"{uid}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG + person.user["full_name"].encode())
        stamp = person.user["created_at"].replace(tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
        written += 1
    return written


def _queue_keys(pipe: Any, prefix: str, person: _Person) -> int:
    uid = person.user["id"]
    for token, created in person.sessions:
        pipe.hset(f"{prefix}session:{uid}:{token}", mapping={
            "created_at": int(created), "device": "phone", "ip": f"192.0.2.{uid % 250 + 1}"})
    if person.searches:
        pipe.rpush(f"{prefix}searches:{uid}", *person.searches)
    return len(person.sessions) + (1 if person.searches else 0)

