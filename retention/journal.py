"""The batch journal of one step: each batch a store destroys is recorded so that a crash at any point neither
loses nor double counts it, and the step's total and key digest add up from it.

The protocol (docs/retention.md explains it): the store calls `prepare(keys)` with the keys of a batch before
it commits that batch; the journal commits a `prepared` row holding those keys. After the store commits, its
count arrives in `record(count)`, and the row becomes `committed` (in the next batch's transaction, to save a
commit). A `prepared` row left by a crashed attempt is resolved by the attempt that resumes the step: keys the
store selects again were not destroyed (the store rolled back), and come out of the row; the keys still in it
when the step ends were destroyed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from retention import digest
from retention.leases import Lease, LeaseLost
from retention.models import RetentionBatch


class JournalError(Exception):
    """Recording a batch failed (the service's database): the store's batch is not committed."""


class Journal:
    def __init__(self, db: Any, lease: Lease, step_id: int, *, store: str, category: str, secret: bytes,
                 dry_run: bool) -> None:
        self.db, self.lease, self.step_id, self.dry_run = db, lease, step_id, dry_run
        self._hash = lambda keys: digest.key_sum(secret, store, category, keys)
        with db.sessions() as session:
            if dry_run:
                # A dry run destroyed nothing, so an interrupted one simply counts again from the start.
                session.execute(delete(RetentionBatch).where(RetentionBatch.step_id == step_id))
                session.commit()
            rows = list(session.scalars(select(RetentionBatch).where(RetentionBatch.step_id == step_id)))
        self.seq = max((r.seq for r in rows), default=0)
        self.unresolved: dict[int, set[str]] = {r.id: set(r.keys or ()) for r in rows if r.state == "prepared"}
        self._prepared: int | None = None  # prepared by this attempt, its count not yet reported by the store
        self._pending: tuple[int, int] | None = None  # (batch id, count): reported, to be marked committed

    def prepare(self, keys: Sequence[str]) -> None:
        """The store's `on_batch`: called with a batch's record keys before the store commits the batch."""
        keys = list(keys)
        try:
            with self.db.session() as session:
                self.lease.renew(session)
                self._confirm(session)
                if self.unresolved:
                    self._reconcile(session, keys)
                self.seq += 1
                batch = RetentionBatch(step_id=self.step_id, seq=self.seq, state="prepared", count=len(keys),
                                       digest=digest.to_hex(self._hash(keys)), keys=keys)
                session.add(batch)
                session.flush()
                self._prepared = batch.id
        except LeaseLost:
            raise
        except Exception as exc:
            raise JournalError(f"could not record a batch: {type(exc).__name__}") from exc

    def record(self, count: int) -> None:
        """The store committed a batch of `count` records (or, in a dry run, would destroy them)."""
        if self._prepared is not None:
            self._pending, self._prepared = (self._prepared, count), None
            return
        # No keys came first: a dry run, or a plugin that cannot report keys. The count alone is recorded.
        with self.db.session() as session:
            self.lease.renew(session)
            self._confirm(session)
            self.seq += 1
            session.add(RetentionBatch(step_id=self.step_id, seq=self.seq, state="committed", count=count,
                                       digest=None, keys=None))

    def finish(self) -> tuple[int, str | None]:
        """The store has no more batches: settle every row; return the step's total and key digest."""
        with self.db.session() as session:
            self.lease.renew(session)
            self._confirm(session)
            if self.unresolved:
                session.execute(update(RetentionBatch).where(RetentionBatch.id.in_(list(self.unresolved)))
                                .values(state="committed", keys=None),
                                execution_options={"synchronize_session": False})
                self.unresolved = {}
            rows = session.execute(select(RetentionBatch.count, RetentionBatch.digest)
                                   .where(RetentionBatch.step_id == self.step_id)).all()
        total = sum(r.count for r in rows)
        if self.dry_run or any(r.digest is None for r in rows):
            return total, None  # nothing destroyed, or a store that cannot report its keys
        return total, digest.combine(r.digest for r in rows)

    def _confirm(self, session: Session) -> None:
        if self._pending is None:
            return
        batch_id, count = self._pending
        session.execute(update(RetentionBatch).where(RetentionBatch.id == batch_id)
                        .values(state="committed", count=count, keys=None),
                        execution_options={"synchronize_session": False})
        self._pending = None

    def _reconcile(self, session: Session, keys: list[str]) -> None:
        """Keys selected again were not destroyed by the crashed attempt that prepared them: take them out."""
        fresh = set(keys)
        for batch_id, held in list(self.unresolved.items()):
            again = held & fresh
            if not again:
                continue
            held -= again
            if held:
                session.execute(update(RetentionBatch).where(RetentionBatch.id == batch_id).values(
                    keys=sorted(held), count=len(held), digest=digest.to_hex(self._hash(held))),
                    execution_options={"synchronize_session": False})
            else:
                session.execute(delete(RetentionBatch).where(RetentionBatch.id == batch_id),
                                execution_options={"synchronize_session": False})
                del self.unresolved[batch_id]
