"""The consent ledger's hash chain: how an event's hash is computed, and the check that recomputes the chains."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from consent import checkpoint as checkpoints
from consent.checkpoint import Checkpoint
from consent.models import ConsentEvent
from service.audit import AuditEvent
from service.crypto.signing import canonical_json

CONTENT_FIELDS = ("id", "app_id", "policy_id", "version_id", "subject", "seq", "kind", "purposes", "gpc",
                  "channel", "locale", "evidence", "created_at", "prev_hash")
BATCH = 2000

_EVENTS = ConsentEvent.__table__
# Plain rows in the order `hash_content` takes them, then the stored hash: no ORM identity map to fill or clear,
# so a stream of any length holds one batch at a time.
_CHAIN_ROWS = select(*(_EVENTS.c[name] for name in CONTENT_FIELDS), _EVENTS.c.hash)
_HASH = len(CONTENT_FIELDS)
_ID, _APP, _SUBJECT, _SEQ, _PREV = (CONTENT_FIELDS.index(n) for n in ("id", "app_id", "subject", "seq", "prev_hash"))
_ERASED = (AuditEvent.resource_type == "consent_event", AuditEvent.action == "consent.erased")


def hash_content(values: Sequence[Any]) -> str:
    """SHA-256 over the canonical JSON of an event's content, given in CONTENT_FIELDS order; the content includes
    the previous event's hash."""
    content = dict(zip(CONTENT_FIELDS, values, strict=True))
    content["created_at"] = content["created_at"].isoformat(timespec="microseconds")
    if content["evidence"] is not None:
        content["evidence"] = base64.b64encode(content["evidence"]).decode()
    return hashlib.sha256(canonical_json(content)).hexdigest()


def content_hash(event: Any) -> str:
    """The hash the write path stores for an event (a ConsentEvent, or anything with its content attributes)."""
    return hash_content([getattr(event, name) for name in CONTENT_FIELDS])


@dataclass(frozen=True)
class Break:
    """A place where the ledger is not what was written. `app_id` is the app the event claims (None when
    unknown): a break is named only to its own app."""

    event_id: str
    subject: str
    problem: str
    app_id: int | None = None

    def __str__(self) -> str:
        if not self.subject:
            return f"{self.event_id}: {self.problem}"
        return f"event {self.event_id} (subject {self.subject[:12]}…): {self.problem}"


class _Tombstones:
    """Where erased events sat in their chains (audited by `consent.erased`): hash -> (seq, previous hash).

    Loaded on the first gap only: a ledger without partial erasures never reads them.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._by_hash: dict[str, tuple[int, str | None]] | None = None

    def bridges(self, row: Sequence[Any], prev: Sequence[Any] | None) -> bool:
        """Do erased events, each audited with its place, link `row` back to `prev` (or the chain's start)?"""
        if self._by_hash is None:
            rows = self._conn.execute(select(AuditEvent.details).where(*_ERASED)).scalars()
            self._by_hash = {d["hash"]: (d["seq"], d.get("prev_hash")) for d in rows
                             if isinstance(d, dict) and "hash" in d and "seq" in d}
        first = prev[_SEQ] + 1 if prev else 1
        link, seq = row[_PREV], row[_SEQ] - 1
        while seq >= first:
            found = self._by_hash.get(link) if link else None
            if found is None or found[0] != seq:
                return False
            link, seq = found[1], seq - 1
        return seq == first - 1 and link == (prev[_HASH] if prev else None)


@dataclass
class LedgerCheck:
    """One verification: iterate it for the breaks; afterwards it holds what was checked and, when nothing was
    broken and it ran in one snapshot, the checkpoint a later run can start from (unsigned: see
    consent.verifications).

    Full (the default): every event's hash is recomputed and every chain's links followed. With `since` (a
    checkpoint) the stored place of every event the checkpoint covers is also compared with it; `incremental`
    then recomputes only the chains that changed after it (docs/architecture.md says what that guarantees).
    """

    session: Session
    batch: int = BATCH
    since: Checkpoint | None = None
    incremental: bool = False
    lag: timedelta = checkpoints.LAG
    segment: int = checkpoints.SEGMENT
    events: int = 0
    chains: int = 0
    breaks: int = 0
    first: Break | None = None
    checkpoint: Checkpoint | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        if self.incremental and self.since is None:
            raise ValueError("an incremental check needs a checkpoint to start from")

    def __iter__(self) -> Iterator[Break]:
        conn, consistent = _snapshot(self.session)
        tombstones = _Tombstones(conn)
        # First the stored places in id order (cheap: no content is read), which also names the chains that
        # changed after `since`; then the chains themselves; then the audit trail.
        digest = checkpoints.digest(conn, batch=self.batch, horizon=checkpoints.horizon_at(self.started_at - self.lag),
                                    segment=self.segment, since=self.since, changed_chains=self.incremental)
        if self.incremental:
            rows = _changed_chains(conn, sorted(digest.changed_subjects), self.batch)
        else:
            rows = conn.execute(_CHAIN_ROWS.order_by(_EVENTS.c.subject, _EVENTS.c.seq)
                                .execution_options(yield_per=self.batch))
        yield from self._found(self._chains(rows, tombstones))
        yield from self._found(_missing(conn, digest if self.incremental else None))
        yield from self._found(Break(name, "", problem) for name, problem in digest.mismatches)
        if self.breaks == 0 and consistent:
            self.checkpoint = digest.checkpoint(
                content_verified_at=self.since.content_verified_at if self.incremental and self.since
                else self.started_at.isoformat())

    def _found(self, breaks: Iterator[Break]) -> Iterator[Break]:
        for found in breaks:
            self.breaks += 1
            self.first = self.first or found
            yield found

    def _chains(self, rows: Any, tombstones: _Tombstones) -> Iterator[Break]:
        """Follow each chain row by row (rows come in (subject, seq) order): only the previous row is kept."""
        prev: Sequence[Any] | None = None
        for row in rows:
            self.events += 1
            if prev is None or prev[_SUBJECT] != row[_SUBJECT]:
                self.chains += 1
                prev = None
            expected_seq = prev[_SEQ] + 1 if prev else 1
            expected_link = prev[_HASH] if prev else None
            intact = row[_SEQ] == expected_seq and row[_PREV] == expected_link
            if row[_HASH] != hash_content(row[:_HASH]):
                yield Break(row[_ID], row[_SUBJECT], "content does not match its hash (altered)", row[_APP])
            elif not intact and row[_SEQ] > expected_seq and tombstones.bridges(row, prev):
                pass  # erased events, audited with their places, fill the gap
            elif row[_SEQ] != expected_seq:
                yield Break(row[_ID], row[_SUBJECT], f"sequence {row[_SEQ]}, expected {expected_seq} "
                            "(an earlier event was removed)", row[_APP])
            elif row[_PREV] != expected_link:
                yield Break(row[_ID], row[_SUBJECT], "previous-hash link broken (removed or reordered)", row[_APP])
            prev = row


def verify(session: Session, batch: int = BATCH, *, since: Checkpoint | None = None, incremental: bool = False,
           lag: timedelta = checkpoints.LAG, segment: int = checkpoints.SEGMENT,
           started_at: datetime | None = None) -> LedgerCheck:
    """Recompute the chains; iterate the result for each break found (altered, missing or reordered events).

    Streams the table `batch` events at a time, so memory does not grow with the ledger. A gap is not a break
    when the events missing from it were erased by a rights request and their audited places link the events on
    either side (consent kept as proof around erased records). Give it a session that has not run a statement
    yet: all its reads then come from one snapshot, and an intact result carries a checkpoint. `started_at`
    (default now) dates the check: its checkpoint covers the events made `lag` before it.
    """
    return LedgerCheck(session, batch=batch, since=since, incremental=incremental, lag=lag, segment=segment,
                       started_at=started_at or datetime.now(UTC))


def _snapshot(session: Session) -> tuple[Connection, bool]:
    """The session's connection, in one snapshot for every read of the check when the session is still fresh;
    the flag says whether it is (a checkpoint is only taken from one)."""
    fresh = not session.in_transaction()
    if session.get_bind().dialect.name == "postgresql":
        if fresh:
            return session.connection(execution_options={"isolation_level": "REPEATABLE READ"}), True
        return session.connection(), False
    conn = session.connection()
    dbapi = conn.connection.dbapi_connection
    # SQLite's driver opens no transaction for reads, so each statement would see its own snapshot; an explicit
    # BEGIN makes them share one (WAL: writers carry on meanwhile). Within a write transaction they already do.
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN")
    return conn, True


def _changed_chains(conn: Connection, subjects: list[str], batch: int) -> Iterator[Sequence[Any]]:
    """The whole chains of `subjects` (sorted), `batch` subjects per query, in (subject, seq) order."""
    stmt = (_CHAIN_ROWS.where(_EVENTS.c.subject.in_(bindparam("subjects", expanding=True)))
            .order_by(_EVENTS.c.subject, _EVENTS.c.seq))
    for start in range(0, len(subjects), batch):
        yield from conn.execute(stmt, {"subjects": subjects[start:start + batch]})


def _missing(conn: Connection, digest: checkpoints.Digest | None) -> Iterator[Break]:
    """Events the audit trail records that are gone from the ledger, not erased by a rights request.

    The tail of a chain leaves no successor to notice its removal; the audit trail names every event. A chain
    removed by a rights request is audited as erased, whole: that is not a break. With `digest` (incremental),
    only events after the checkpoint or in a part of it that changed are looked for.
    """
    erased = select(AuditEvent.resource_id).where(*_ERASED)
    stmt = (select(AuditEvent.resource_id, AuditEvent.app_id)
            .outerjoin(ConsentEvent, ConsentEvent.id == AuditEvent.resource_id)
            .where(AuditEvent.resource_type == "consent_event", ConsentEvent.id.is_(None),
                   AuditEvent.resource_id.not_in(erased))
            .distinct().order_by(AuditEvent.resource_id))
    if digest is None:
        ranges: list[tuple[str | None, str | None]] = [(None, None)]
    else:
        ranges = [*digest.changed_ranges, (digest.since_horizon, None)]
    for low, high in ranges:
        part = stmt
        if low is not None:
            part = part.where(AuditEvent.resource_id >= low)
        if high is not None:
            part = part.where(AuditEvent.resource_id < high)
        for resource_id, app_id in conn.execute(part):
            yield Break(resource_id, "?" * 12, "recorded in the audit trail but missing from the ledger (removed)",
                        app_id)
