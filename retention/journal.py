"""The batch journal of one step: each batch a store destroys is recorded so that a crash at any point neither
loses nor double counts it, and the step's total and key digest add up from it.

Two protocols (docs/retention.md explains both). With `on_batch`, the store calls `prepare(keys)` with the keys
of a batch before it commits that batch; the journal commits a `prepared` row holding those keys, in a statement
that also checks that this attempt still holds its run (a fence: an attempt that lost its lease records nothing,
so its store batch rolls back). After the store commits, its count arrives in `record(count)`; the row becomes
`committed`, with its key digest, in the same statement that prepares the next batch. A `prepared` row left by a
crashed attempt is resolved by the attempt that resumes the step: keys the store selects again were not destroyed
(the store rolled back) and come out of the row; the keys still in it when the step ends were destroyed.

A store that can tell afterwards whether one of its transactions committed (the `sql` plugin on PostgreSQL)
uses `begin(keys, token)` and `seal()` instead (service.stores.contract.BatchJournal): the journal hashes the
keys and commits a `prepared` row holding their count, their digest and the store's transaction token while the
store destroys them, and the store commits only after `seal()`. No key is kept; the attempt that settles the
step asks the store whether each token's transaction committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, select, update

from retention import digest
from retention.journal_sql import BATCHES, CONFIRM, PREPARE, PREPARE_AND_CONFIRM
from retention.leases import Lease, LeaseLost
from retention.models import RetentionBatch
from service.db import utcnow

# How long settling a step waits for a store transaction of an earlier attempt that is still open.
OPEN_WAIT_SECONDS = 30.0


class JournalError(Exception):
    """Recording a batch failed (the service's database): the store's batch is not committed."""


class Journal:
    """Use as a context manager: it owns a thread that hashes keys (and, for a BatchJournal, records them)
    while the store works. It takes the Database and commits each of its rows on its own, fenced by the lease:
    a batch's row must be durable before (prepared) and after (committed) the store's own commit.

    `committed(token)` is the store's `batch_committed`, for the tokens of `begin`.
    """

    def __init__(self, db: Any, lease: Lease, step_id: int, *, store: str, category: str, secret: bytes,
                 dry_run: bool, committed: Callable[[str], bool | None] | None = None) -> None:
        self.db, self.lease, self.step_id, self.dry_run = db, lease, step_id, dry_run
        # Hashed in a background thread while the store works. It does not give up the interpreter on purpose:
        # measured, every explicit yield made the thread waiting on the database slower, not faster.
        self._sum = lambda keys: digest.key_sum(secret, store, category, keys)
        self._committed = committed
        self._renewed = time.monotonic()
        with db.session() as session:
            if dry_run:
                # A dry run destroyed nothing, so an interrupted one simply counts again from the start.
                session.execute(delete(RetentionBatch).where(RetentionBatch.step_id == step_id))
            rows = list(session.scalars(select(RetentionBatch).where(RetentionBatch.step_id == step_id)))
        self.seq = max((r.seq for r in rows), default=0)
        prepared = [r for r in rows if r.state == "prepared"]
        # Prepared rows of a crashed attempt: with keys (on_batch), or with the store's token (begin/seal).
        self.unresolved: dict[int, set[str]] = {r.id: set(r.keys or ()) for r in prepared
                                                if not isinstance(r.keys, dict)}
        self.tokens: dict[int, str] = {r.id: r.keys["token"] for r in prepared if isinstance(r.keys, dict)}
        # The batch prepared by this attempt whose count the store has not reported yet: (id, keys' digest).
        self._prepared: tuple[int, Future[int]] | None = None
        # Reported by the store, to be marked committed with the next statement: (id, count, keys' digest).
        self._pending: tuple[int, int, Future[int]] | None = None
        # A batch begun and not sealed yet: its row's id and digest to come, its keys and token, and the
        # confirmation the same statement carries (to restore if the statement fails).
        self._begun: tuple[Future[tuple[int, int]], Sequence[str], str, tuple[int, int, Future[int]] | None] \
            | None = None
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retention-digest")
        # On PostgreSQL one connection in autocommit serves the step: each statement commits on its own, which
        # is all the protocol needs, without BEGIN, COMMIT and pool round trips for every batch.
        self._conn = (db.engine.execution_options(isolation_level="AUTOCOMMIT").connect()
                      if db.dialect == "postgresql" else None)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            with suppress(Exception):
                self._settle_begun()  # its row stays prepared, with its token: the next attempt asks the store
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

    # --- the store's side: on_batch -----------------------------------------------------------------------

    def prepare(self, keys: Sequence[str]) -> None:
        """The store's `on_batch`: called with a batch's record keys before the store commits the batch."""
        keys = list(keys)
        try:
            with self._statements() as conn:
                self._renew_if_due(conn)
                if self.unresolved:
                    self._reconcile(conn, keys)
                self.seq += 1
                batch_id = self._insert(conn, self.seq, len(keys), keys, None, self._confirm_values(self._pending))
        except LeaseLost:
            raise
        except Exception as exc:
            raise JournalError(f"could not record a batch: {type(exc).__name__}") from exc
        self._pending = None
        self._prepared = (batch_id, self._hasher.submit(self._sum, keys))

    # --- the store's side: a BatchJournal -------------------------------------------------------------------

    def begin(self, keys: Sequence[str], token: str) -> None:
        """A batch chosen, not yet destroyed: hash its keys and prepare its row while the store destroys it."""
        self._settle_begun()
        self.seq += 1
        pending, self._pending = self._pending, None
        task = self._hasher.submit(self._prepare_sealed, keys, token, self.seq, pending)
        self._begun = (task, keys, token, pending)

    def seal(self) -> None:
        """The store destroyed exactly the begun keys: return once their row is durable (then it may commit)."""
        assert self._begun is not None, "seal() without begin()"
        task, keys, _, pending = self._begun
        self._begun = None
        batch_id, total = self._outcome_of(task, pending)
        if self.unresolved:
            # Rows prepared with keys by an attempt before this protocol was used: destroyed now, so not then.
            try:
                with self._statements() as conn:
                    self._reconcile(conn, list(keys))
            except Exception as exc:
                raise JournalError(f"could not record a batch: {type(exc).__name__}") from exc
        done: Future[int] = Future()
        done.set_result(total)
        self._prepared = (batch_id, done)

    def _prepare_sealed(self, keys: Sequence[str], token: str, seq: int,
                        pending: tuple[int, int, Future[int]] | None) -> tuple[int, int]:
        total = self._sum(keys)
        with self._statements() as conn:
            self._renew_if_due(conn)
            batch_id = self._insert(conn, seq, len(keys), {"token": token}, digest.to_hex(total),
                                    self._confirm_values(pending))
        return batch_id, total

    def _outcome_of(self, task: Future[tuple[int, int]],
                    pending: tuple[int, int, Future[int]] | None) -> tuple[int, int]:
        try:
            return task.result()
        except LeaseLost:
            raise
        except Exception as exc:
            self._pending = pending  # the statement failed as a whole: that confirmation is still to be made
            raise JournalError(f"could not record a batch: {type(exc).__name__}") from exc

    def _settle_begun(self) -> None:
        """A batch begun and never sealed rolled back; its row waits for the store to say so when the step ends."""
        if self._begun is not None:
            task, _, token, pending = self._begun
            self._begun = None
            batch_id, _ = self._outcome_of(task, pending)
            self.tokens[batch_id] = token

    # --- counts and the end ---------------------------------------------------------------------------------

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
        self._settle_begun()
        with self._statements() as conn:
            self.lease.renew(conn)
            self._confirm(conn)
            for batch_id, keys in self.unresolved.items():
                # Not selected again, so destroyed by the attempt that crashed before confirming them.
                conn.execute(update(RetentionBatch).where(RetentionBatch.id == batch_id).values(
                    state="committed", count=len(keys), digest=digest.to_hex(self._sum(keys)), keys=None),
                    execution_options={"synchronize_session": False})
            self.unresolved = {}
            for batch_id, token in list(self.tokens.items()):
                # The row holds the batch's count and digest: it stands if the store's transaction committed.
                if self._store_committed(conn, token):
                    conn.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(state="committed",
                                                                                        keys=None))
                else:
                    conn.execute(delete(BATCHES).where(BATCHES.c.id == batch_id))
                del self.tokens[batch_id]
            rows = conn.execute(select(RetentionBatch.count, RetentionBatch.digest)
                                .where(RetentionBatch.step_id == self.step_id)).all()
        total = sum(r.count for r in rows)
        if self.dry_run or any(r.digest is None for r in rows):
            return total, None  # nothing destroyed, or a store that cannot report its keys
        return total, digest.combine(r.digest for r in rows)

    def _store_committed(self, conn: sa.Connection, token: str) -> bool:
        if self._committed is None:
            raise JournalError("a batch waits for its store to say whether it committed, and the store cannot")
        deadline = time.monotonic() + OPEN_WAIT_SECONDS
        while (outcome := self._committed(token)) is None:
            # Still open: an earlier attempt that lost its lease is about to commit or roll back.
            if time.monotonic() > deadline:
                raise JournalError("a batch of an earlier attempt is still open in its store; retry later")
            time.sleep(0.5)
            self._renew_if_due(conn)
        return outcome

    # --- statements -------------------------------------------------------------------------------------

    def _renewal_due(self) -> bool:
        # Every batch is fenced by `_insert`; the expiry itself needs extending only now and then.
        return time.monotonic() - self._renewed > self.lease.ttl / 4

    def _renew_if_due(self, conn: sa.Connection) -> None:
        if self._renewal_due():
            self.lease.renew(conn)
            self._renewed = time.monotonic()

    @staticmethod
    def _confirm_values(pending: tuple[int, int, Future[int]] | None) -> dict[str, Any] | None:
        if pending is None:
            return None
        batch_id, count, future = pending
        return {"confirm_id": batch_id, "confirm_count": count, "confirm_digest": digest.to_hex(future.result())}

    def _confirm(self, conn: sa.Connection) -> None:
        values = self._confirm_values(self._pending)
        if values is not None:
            conn.execute(CONFIRM, values)
            self._pending = None

    def _insert(self, conn: sa.Connection, seq: int, count: int, keys: Any, key_digest: str | None,
                confirm: dict[str, Any] | None) -> int:
        """Confirm the previous batch and prepare this one, fenced, in one statement where the database can."""
        # Parameter names differ from column names: SQLAlchemy would take those as more SET values.
        params = {"p_step": self.step_id, "p_seq": seq, "p_count": count, "p_keys": keys, "p_digest": key_digest,
                  "p_at": utcnow(), "p_run": self.lease.run_id, "p_token": self.lease.token,
                  "p_policy": self.lease.policy_id}
        fenced = self.lease.policy_id is not None
        if confirm is not None and conn.dialect.name == "postgresql":
            stmt, params = PREPARE_AND_CONFIRM[fenced], {**params, **confirm}
        else:
            if confirm is not None:
                conn.execute(CONFIRM, confirm)
            stmt = PREPARE[fenced]
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
