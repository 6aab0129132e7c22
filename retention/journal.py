"""The batch journal of one step: each batch a store destroys is recorded so that a crash at any point neither
loses nor double counts it, and the step's total and key digest add up from it.

The protocol (docs/retention.md explains it): the store calls `prepare(keys)` with the keys of a batch before
it commits that batch; the journal commits a `prepared` row holding those keys, in a statement that also checks
that this attempt still holds its run (a fence: an attempt that lost its lease records nothing, so its store
batch rolls back). After the store commits, its count arrives in `record(count)`; the row becomes `committed`,
with its key digest, in the same statement that prepares the next batch. A `prepared` row left by a crashed
attempt is resolved by the attempt that resumes the step: keys the store selects again were not destroyed (the
store rolled back) and come out of the row; the keys still in it when the step ends were destroyed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, exists, select, update

from retention import digest
from retention.leases import Lease, LeaseLost
from retention.models import RetentionBatch, RetentionLock, RetentionRun
from service.db import UTCDateTime, utcnow

BATCHES = RetentionBatch.__table__


class JournalError(Exception):
    """Recording a batch failed (the service's database): the store's batch is not committed."""


class Journal:
    """Use as a context manager: it owns a thread that hashes keys while the store works on the next batch."""

    def __init__(self, db: Any, lease: Lease, step_id: int, *, store: str, category: str, secret: bytes,
                 dry_run: bool) -> None:
        self.db, self.lease, self.step_id, self.dry_run = db, lease, step_id, dry_run
        self._sum = lambda keys: digest.key_sum(secret, store, category, keys)
        self._background_sum = lambda keys: digest.key_sum(secret, store, category, keys, yield_every=256)
        self._renewed = time.monotonic()
        with db.sessions() as session:
            if dry_run:
                # A dry run destroyed nothing, so an interrupted one simply counts again from the start.
                session.execute(delete(RetentionBatch).where(RetentionBatch.step_id == step_id))
                session.commit()
            rows = list(session.scalars(select(RetentionBatch).where(RetentionBatch.step_id == step_id)))
        self.seq = max((r.seq for r in rows), default=0)
        self.unresolved: dict[int, set[str]] = {r.id: set(r.keys or ()) for r in rows if r.state == "prepared"}
        # The batch prepared by this attempt whose count the store has not reported yet: (id, keys' digest).
        self._prepared: tuple[int, Future[int]] | None = None
        # Reported by the store, to be marked committed with the next statement: (id, count, keys' digest).
        self._pending: tuple[int, int, Future[int]] | None = None
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retention-digest")
        # On PostgreSQL one connection in autocommit serves the step: each statement commits on its own, which
        # is all the protocol needs, without BEGIN, COMMIT and pool round trips for every batch.
        self._conn = (db.engine.execution_options(isolation_level="AUTOCOMMIT").connect()
                      if db.dialect == "postgresql" else None)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._pending is not None:
                # The store failed after committing this batch: record it now rather than leave it unresolved.
                with suppress(Exception), self._statements() as conn:
                    self._confirm(conn)
        finally:
            self._hasher.shutdown(wait=True, cancel_futures=True)
            if self._conn is not None:
                self._conn.close()

    @contextmanager
    def _statements(self) -> Iterator[sa.Connection]:
        if self._conn is not None:
            yield self._conn
        else:
            with self.db.engine.begin() as conn:
                yield conn

    # --- the store's side -------------------------------------------------------------------------------

    def prepare(self, keys: Sequence[str]) -> None:
        """The store's `on_batch`: called with a batch's record keys before the store commits the batch."""
        keys = list(keys)
        try:
            with self._statements() as conn:
                self._renew_if_due(conn)
                if self.unresolved:
                    self._reconcile(conn, keys)
                self.seq += 1
                batch_id = self._insert(conn, keys)
        except LeaseLost:
            raise
        except Exception as exc:
            raise JournalError(f"could not record a batch: {type(exc).__name__}") from exc
        self._pending = None
        self._prepared = (batch_id, self._hasher.submit(self._background_sum, keys))

    def record(self, count: int) -> None:
        """The store committed a batch of `count` records (or, in a dry run, would destroy them)."""
        if self._prepared is not None:
            batch_id, future = self._prepared
            self._pending, self._prepared = (batch_id, count, future), None
            return
        # No keys came first: a dry run, or a plugin that cannot report keys. The count alone is recorded.
        with self._statements() as conn:
            self._renew_if_due(conn)
            self._confirm(conn)
            self.seq += 1
            conn.execute(BATCHES.insert().values(step_id=self.step_id, seq=self.seq, state="committed", count=count,
                                                 digest=None, keys=None, recorded_at=utcnow()))

    def finish(self) -> tuple[int, str | None]:
        """The store has no more batches: settle every row; return the step's total and key digest."""
        with self._statements() as conn:
            self.lease.renew(conn)
            self._confirm(conn)
            for batch_id, keys in self.unresolved.items():
                # Not selected again, so destroyed by the attempt that crashed before confirming them.
                conn.execute(update(RetentionBatch).where(RetentionBatch.id == batch_id).values(
                    state="committed", count=len(keys), digest=digest.to_hex(self._sum(keys)), keys=None),
                    execution_options={"synchronize_session": False})
            self.unresolved = {}
            rows = conn.execute(select(RetentionBatch.count, RetentionBatch.digest)
                                .where(RetentionBatch.step_id == self.step_id)).all()
        total = sum(r.count for r in rows)
        if self.dry_run or any(r.digest is None for r in rows):
            return total, None  # nothing destroyed, or a store that cannot report its keys
        return total, digest.combine(r.digest for r in rows)

    # --- statements -------------------------------------------------------------------------------------

    def _renewal_due(self) -> bool:
        # Every batch is fenced by `_insert`; the expiry itself needs extending only now and then.
        return time.monotonic() - self._renewed > self.lease.ttl / 4

    def _renew_if_due(self, conn: sa.Connection) -> None:
        if self._renewal_due():
            self.lease.renew(conn)
            self._renewed = time.monotonic()

    def _confirm_values(self) -> dict[str, Any] | None:
        if self._pending is None:
            return None
        batch_id, count, future = self._pending
        return {"confirm_id": batch_id, "confirm_count": count, "confirm_digest": digest.to_hex(future.result())}

    def _confirm(self, conn: sa.Connection) -> None:
        values = self._confirm_values()
        if values is not None:
            conn.execute(_CONFIRM, values)
            self._pending = None

    def _insert(self, conn: sa.Connection, keys: list[str]) -> int:
        """Confirm the previous batch and prepare this one, fenced, in one statement where the database can."""
        # Parameter names differ from column names: SQLAlchemy would take those as more SET values.
        params = {"p_step": self.step_id, "p_seq": self.seq, "p_count": len(keys), "p_keys": keys,
                  "p_at": utcnow(), "p_run": self.lease.run_id, "p_token": self.lease.token,
                  "p_policy": self.lease.policy_id}
        confirm = self._confirm_values()
        fenced = self.lease.policy_id is not None
        if confirm is not None and conn.dialect.name == "postgresql":
            stmt, params = _PREPARE_AND_CONFIRM[fenced], {**params, **confirm}
        else:
            if confirm is not None:
                conn.execute(_CONFIRM, confirm)
            stmt = _PREPARE[fenced]
        batch_id = conn.execute(stmt, params).scalar()
        if batch_id is None:
            raise LeaseLost(f"run {self.lease.run_id}: lease lost")
        return batch_id

    def _reconcile(self, conn: sa.Connection, keys: list[str]) -> None:
        """Keys selected again were not destroyed by the crashed attempt that prepared them: take them out."""
        fresh = set(keys)
        for batch_id, held in list(self.unresolved.items()):
            again = held & fresh
            if not again:
                continue
            held -= again
            if held:
                conn.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(keys=sorted(held),
                                                                                    count=len(held)))
            else:
                conn.execute(delete(BATCHES).where(BATCHES.c.id == batch_id))
                del self.unresolved[batch_id]


# The journal's statements, built once: a run executes them for every batch.
_CONFIRM = (update(BATCHES).where(BATCHES.c.id == sa.bindparam("confirm_id"))
            .values(state="committed", count=sa.bindparam("confirm_count"),
                    digest=sa.bindparam("confirm_digest"), keys=None))


def _prepare_statement(policy_fence: bool, confirm: bool) -> sa.Insert:
    """INSERT a prepared batch only while the attempt holds its run (and policy): a fence, in the same statement."""
    holder = exists().where(RetentionRun.id == sa.bindparam("p_run"),
                            RetentionRun.lease_token == sa.bindparam("p_token"))
    if policy_fence:
        holder = holder.where(exists().where(RetentionLock.policy_id == sa.bindparam("p_policy"),
                                             RetentionLock.run_id == sa.bindparam("p_run")))
    values = sa.select(sa.bindparam("p_step", type_=sa.Integer()), sa.bindparam("p_seq", type_=sa.Integer()),
                       sa.literal("prepared"), sa.bindparam("p_count", type_=sa.Integer()),
                       sa.bindparam("p_keys", type_=BATCHES.c["keys"].type),
                       sa.bindparam("p_at", type_=UTCDateTime())).where(holder)
    stmt = BATCHES.insert().from_select(["step_id", "seq", "state", "count", "keys", "recorded_at"], values)
    if confirm:
        stmt = stmt.add_cte(_CONFIRM.returning(BATCHES.c.id).cte("confirmed"))
    return stmt.returning(BATCHES.c.id)


_PREPARE = {fence: _prepare_statement(fence, False) for fence in (False, True)}
_PREPARE_AND_CONFIRM = {fence: _prepare_statement(fence, True) for fence in (False, True)}
