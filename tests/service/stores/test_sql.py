"""The sql plugin beyond the contract: anonymisation in the database, set-based batches, holds through parents."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from service.config import ConfigError
from service.stores import build_registry
from service.stores.demo import albums, device_logs, orders, photos, users
from service.stores.sql_build import python_hmac
from tests.service.stores.conftest import HASH_KEY, NOW
from tests.service.stores.estate import CUTOFFS, estate, sql_subjects


@pytest.fixture
def photos_db(sql_url, tmp_path):
    with estate(sql_url, tmp_path) as registry:
        yield registry.get("cloud-photos")


def _rows(store, table, *where):
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(*where).order_by(table.c.id)).mappings()]


def test_anonymise_replaces_columns_in_the_database_with_a_keyed_hash(photos_db):
    subject = sql_subjects("orders")[0]
    uid, email = int(subject.identity["user_id"]), subject.identity["email"]
    before = _rows(photos_db, orders, orders.c.user_id == uid)
    assert before and all(r["anonymized_at"] is None for r in before)
    assert photos_db.erase(subject.identity)["orders"] == len(before)
    after = _rows(photos_db, orders, orders.c.id.in_([r["id"] for r in before]))
    for old, new in zip(before, after, strict=True):
        assert new["user_id"] is None and new["shipping_address"] == "[removed]"
        assert new["email"] == python_hmac(HASH_KEY, email) != email  # the same HMAC on every backend
        assert new["total_cents"] == old["total_cents"] and new["anonymized_at"] is not None


def test_erase_and_expire_are_set_based_batches(photos_db):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).upper())

    sa.event.listen(photos_db.engine, "before_cursor_execute", record)
    try:
        expired = list(photos_db.expire("device_log", CUTOFFS["device_log"], batch_size=10))
    finally:
        sa.event.remove(photos_db.engine, "before_cursor_execute", record)
    deletes = [s for s in statements if s.startswith("DELETE FROM DEVICE_LOGS")]
    assert sum(expired) > 30 and all(b <= 10 for b in expired)
    assert len(deletes) in (len(expired), len(expired) + 1)  # one statement per batch, never one per row
    assert not [s for s in statements if s.startswith("SELECT") and "FROM DEVICE_LOGS" in s.split("WHERE")[0]
                and "IN (SELECT" not in s]  # rows are never read into Python


def test_a_held_child_category_keeps_its_parent_rows(photos_db):
    subject = sql_subjects("photos")[0]
    uid = int(subject.identity["user_id"])
    result = photos_db.erase(subject.identity, exclude_categories=["photos"])
    assert "photos" not in result and result["device_log"] == subject.counts["device_log"]
    assert result["location"] == subject.counts["location"]  # GPS columns scrubbed from held photos
    assert result["contact"] == 0  # the user row is still referenced by held albums
    kept_albums = _rows(photos_db, albums, albums.c.user_id == uid)
    kept_photos = _rows(photos_db, photos, photos.c.album_id.in_([a["id"] for a in kept_albums]))
    assert len(kept_albums) + len(kept_photos) == subject.counts["photos"]
    assert all(p["latitude"] is None and p["longitude"] is None for p in kept_photos)
    assert _rows(photos_db, users, users.c.id == uid) and not _rows(photos_db, device_logs,
                                                                  device_logs.c.user_id == uid)


def test_expire_deletes_a_parent_only_once_nothing_refers_to_it(photos_db):
    cutoff = NOW + timedelta(days=1)  # everything seeded is older
    total = {t.name: len(_rows(photos_db, t)) for t in (users, albums, photos, device_logs, orders)}
    assert sum(photos_db.expire("contact", cutoff, batch_size=50)) == 0  # albums, logs and orders refer to users
    assert sum(photos_db.expire("photos", cutoff, batch_size=50)) == total["albums"] + total["photos"]
    assert sum(photos_db.expire("device_log", cutoff, batch_size=50)) == total["device_logs"]
    buyers = len({o["user_id"] for o in _rows(photos_db, orders)})
    assert sum(photos_db.expire("contact", cutoff, batch_size=50, dry_run=True)) == total["users"] - buyers
    assert sum(photos_db.expire("orders", cutoff, batch_size=50)) == total["orders"]  # user_id := null
    assert sum(photos_db.expire("contact", cutoff, batch_size=50)) == total["users"]


def test_identity_values_of_the_wrong_type_match_nothing(photos_db):
    assert list(photos_db.access({"user_id": "not-a-number"})) == []
    subject = sql_subjects("device_log")[0]
    phone = _rows(photos_db, users, users.c.id == int(subject.identity["user_id"]))[0]["phone"]
    assert sum(1 for r in photos_db.access({"phone": phone}) if r.category == "contact") == 1


@pytest.fixture
def small_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'small.sqlite3'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, seen_at TIMESTAMP)"))
        conn.execute(sa.text("CREATE TABLE notes (id INTEGER PRIMARY KEY, person_id INTEGER, body TEXT, "
                             "at TIMESTAMP, done_at TIMESTAMP)"))
        conn.execute(sa.text("CREATE TABLE pairs (a INTEGER, b INTEGER, PRIMARY KEY (a, b))"))
    engine.dispose()
    return url


PEOPLE = {"table": "people", "category": "contact", "identity": {"email": "email"}, "timestamp_column": "seen_at"}


@pytest.mark.parametrize(("table", "message"), [
    ({**PEOPLE, "table": "nope"}, "tables[0].table: no table 'nope'"),
    ({**PEOPLE, "timestamp_column": "when"}, "tables[0].timestamp_column: no column 'when'"),
    ({**PEOPLE, "identity": {"email": "mail"}}, "tables[0].identity.email: no column 'mail'"),
    ({k: v for k, v in PEOPLE.items() if k != "identity"}, "tables[0].identity: missing"),
    ({k: v for k, v in PEOPLE.items() if k != "category"}, "tables[0].category: missing"),
    ({**PEOPLE, "erase": "shred"}, "tables[0].erase: expected one of"),
    ({**PEOPLE, "erase": "anonymize", "anonymize": {"seen_at": "null"}},
     "tables[0].anonymize: must replace the identifying column(s) ['email']"),
    ({**PEOPLE, "erase": "anonymize", "anonymize": {"email": "hash"}}, "tables[0].anonymized_at_column: required"),
    ({**PEOPLE, "erase": "anonymize", "anonymize": {"email": "scramble"}}, "tables[0].anonymize.email: expected"),
    ({**PEOPLE, "anonymize": {"email": "null"}}, "tables[0].anonymize: only with erase"),
    ({**PEOPLE, "table": "pairs", "identity": {"user_id": "a"}, "timestamp_column": "b"},
     "tables[0].key_column: table pairs has no single-column primary key"),
    ({"table": "notes", "category": "notes", "parent": {"table": "people", "column": "person_id"},
      "timestamp_column": "at"}, "tables[0].parent.table: 'people' is not a declared table"),
])
def test_table_declarations_are_checked_against_the_schema(context, small_db, table, message):
    with pytest.raises(ConfigError) as err:
        build_registry([{"name": "small", "plugin": "sql", "url": small_db, "tables": [table]}], context)
    assert str(err.value).startswith(f"stores[small].{message}"), str(err.value)


def test_a_child_reached_through_its_parent_and_anonymised_by_marker(context, small_db):
    notes = {"table": "notes", "category": "notes", "parent": {"table": "people", "column": "person_id"},
             "timestamp_column": "at", "erase": "anonymize", "anonymize": {"person_id": "null", "body": "hash"},
             "anonymized_at_column": "done_at"}
    store = build_registry([{"name": "small", "plugin": "sql", "url": small_db, "tables": [PEOPLE, notes]}],
                           context).get("small")
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO people VALUES (1, 'a@example.com', '2020-01-01 00:00:00'), "
                             "(2, 'b@example.com', '2020-01-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO notes (id, person_id, body, at) VALUES (1, 1, 'x', '2020-01-01'), "
                             "(2, 1, 'y', '2020-01-01'), (3, 2, 'z', '2020-01-01')"))
    assert store.describe().identity_types == ("email",)
    assert [r.category for r in store.access({"email": "a@example.com"})] == ["contact", "notes", "notes"]
    assert store.erase({"email": "a@example.com"}) == {"contact": 1, "notes": 2}
    assert store.erase({"email": "a@example.com"}) == {"contact": 0, "notes": 0}
    # The remaining note is anonymised once by expiry; the marker keeps a re-run from re-counting it.
    assert list(store.expire("notes", NOW)) == [1] and list(store.expire("notes", NOW)) == []
    with store.engine.connect() as conn:
        bodies = conn.execute(sa.text("SELECT body FROM notes ORDER BY id")).scalars().all()
    assert bodies == [python_hmac(HASH_KEY, "x"), python_hmac(HASH_KEY, "y"), python_hmac(HASH_KEY, "z")]
    store.close()


def test_access_reads_a_subject_larger_than_a_page_once_each_row(photos_db):
    """A page is one plain query; a subject with more rows has the rest streamed after the page's last key:
    every row comes once, in key order, on every backend."""
    from service.stores.sql import ACCESS_PAGE

    uid = int(sql_subjects("device_log")[0].identity["user_id"])
    first = NOW - timedelta(days=1)
    with photos_db.engine.begin() as conn:
        top = conn.scalar(sa.select(sa.func.max(device_logs.c.id)))  # seeded with ids: no sequence to follow
        conn.execute(sa.insert(device_logs), [
            {"id": top + 1 + i, "user_id": uid, "device_id": f"bulk-{i}", "ip_address": "192.0.2.1", "event": "sync",
             "logged_at": first + timedelta(seconds=i)} for i in range(2 * ACCESS_PAGE + 1)])
    expected = [r["id"] for r in _rows(photos_db, device_logs, device_logs.c.user_id == uid)]
    assert len(expected) > 2 * ACCESS_PAGE
    got = [int(r.source.split("/")[1]) for r in photos_db.access({"user_id": str(uid)})
           if r.source.startswith("device_logs/")]
    assert got == expected
