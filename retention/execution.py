"""Executing a run: each step applies one policy through its store's `expire`, honouring legal holds, one
policy lock at a time, recording every batch in the journal; a finished real run gets its certificate."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from holds.service import ActiveHold, active_holds
from retention import certificates, leases
from retention.config import options
from retention.digest import digest_key
from retention.journal import Journal, JournalError
from retention.leases import Lease, LeaseLost
from retention.models import RetentionRun, RetentionStep
from retention.runs import report
from service import audit
from service.db import utcnow
from service.stores.contract import StoreError
from service.stores.registry import registry_for

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class StepInfo:
    id: int
    policy_id: int
    policy: str
    store: str
    category: str
    cutoff: datetime
    state: str


class Progress(Protocol):
    """What the CLI shows while a run executes in the foreground."""

    def begin(self, step: StepInfo, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...

    def end(self, step: StepInfo, state: str, count: int) -> None: ...


def execute(rt: Any, run_id: str, progress: Progress | None = None) -> str | None:
    """Execute (or resume) a run. Returns its final state, or None when another attempt holds it.

    The job's work, in many small transactions it commits as it goes (the lease, each step's state, each batch
    through the journal, the certificate): an attempt may die at any point and the next one resumes from there.
    """
    lease = leases.claim(rt.db, run_id, options(rt.settings).lease_seconds)
    if lease is None:
        log.info("retention run %s: finished already or held by a live attempt", run_id)
        return None
    try:
        with rt.db.sessions() as session:
            run = session.get(RetentionRun, run_id)
            assert run is not None
            dry_run, attempts = run.dry_run, run.attempts
            steps = [StepInfo(s.id, s.policy_id, s.policy_key, s.store, s.category, s.cutoff, s.state)
                     for s in session.scalars(select(RetentionStep).where(RetentionStep.run_id == run_id)
                                              .order_by(RetentionStep.position))]
        if attempts > MAX_ATTEMPTS:
            return _finish(rt, lease, error=f"gave up after {MAX_ATTEMPTS} attempts")
        stores = registry_for(rt)
        secret = digest_key(rt.keys)
        for step in steps:
            if step.state in ("done", "held", "skipped"):
                continue
            _apply(rt, stores, lease, step, secret, dry_run, progress)
        return _finish(rt, lease)
    except LeaseLost:
        log.warning("retention run %s: lease lost; the attempt that took over continues", run_id)
        return None
    except BaseException as exc:
        _let_go(rt.db, lease, exc)
        raise


def _let_go(db: Any, lease: Lease, exc: BaseException) -> None:
    """An unexpected failure (the service's database, a bug): end the lease now so a retry need not wait."""
    try:
        with db.session() as session:
            run = session.get(RetentionRun, lease.run_id)
            if run is not None and run.lease_token == lease.token:
                run.lease_expires_at = utcnow()
                run.error = f"attempt {run.attempts} failed: {type(exc).__name__}"
            leases.release(session, lease.run_id)
    except Exception:  # noqa: BLE001 - the database may be what failed; the lease then expires on its own
        log.warning("retention run %s: could not release the lease", lease.run_id)


def _set_step(db: Any, lease: Lease, step_id: int, **values: Any) -> None:
    with db.session() as session:
        lease.renew(session)
        step = session.get(RetentionStep, step_id)
        assert step is not None
        for name, value in values.items():
            setattr(step, name, value)


def supports_keys(store: Any) -> bool:
    """Whether the plugin's expire takes `on_batch` (third-party plugins may predate it)."""
    return "on_batch" in _expire_parameters(store)


def supports_journal(store: Any) -> bool:
    """Whether the plugin can report batches to a BatchJournal (and resolve its tokens afterwards)."""
    return "journal" in _expire_parameters(store) and callable(getattr(store, "batch_committed", None))


def _expire_parameters(store: Any) -> Collection[str]:
    try:
        return inspect.signature(store.expire).parameters
    except (TypeError, ValueError):
        return ()


def count(store: Any, step: StepInfo, batch_size: int, exclude: Collection[Any] = ()) -> int:
    return sum(store.expire(step.category, step.cutoff, batch_size=batch_size, dry_run=True,
                            exclude_subjects=exclude))


def _apply(rt: Any, stores: Any, lease: Lease, step: StepInfo, secret: bytes, dry_run: bool,
           progress: Progress | None) -> None:
    _set_step(rt.db, lease, step.id, state="running", started_at=utcnow(), error=None)
    if not dry_run:
        holder = leases.acquire(rt.db, lease, step.policy_id)
        if holder is not None:
            _set_step(rt.db, lease, step.id, state="skipped", finished_at=utcnow(),
                      skipped={"reason": "locked", "run": holder})
            _end(progress, step, "skipped", 0)
            return
        lease.policy_id = step.policy_id
    try:
        state, total = _expire(rt, stores, lease, step, secret, dry_run, progress)
        _end(progress, step, state, total)
    except (LeaseLost, JournalError):
        raise
    except Exception as exc:  # noqa: BLE001 - a store's failure fails its step, and the run goes on
        # Store errors name the store and never a person; other errors are reported by type alone.
        message = str(exc) if isinstance(exc, StoreError) else type(exc).__name__
        log.warning("retention run %s: step %s/%s failed: %s", lease.run_id, step.store, step.category, message)
        _set_step(rt.db, lease, step.id, state="failed", error=message, finished_at=utcnow())
        _end(progress, step, "failed", 0)
    finally:
        if lease.policy_id is not None:
            lease.policy_id = None
            with rt.db.session() as session:
                leases.release(session, lease.run_id, step.policy_id)


def _end(progress: Progress | None, step: StepInfo, state: str, total: int) -> None:
    if progress is not None:
        progress.end(step, state, total)


def _holds(rt: Any, step: StepInfo) -> tuple[list[ActiveHold], list[ActiveHold]]:
    """(holds that stop the whole step, holds that exclude subjects) applying to the step's store/category."""
    with rt.db.sessions() as session:
        found = [h for h in active_holds(session, rt.keys) if h.applies_to(step.store, step.category)]
    return [h for h in found if h.subject is None], [h for h in found if h.subject is not None]


def _expire(rt: Any, stores: Any, lease: Lease, step: StepInfo, secret: bytes, dry_run: bool,
            progress: Progress | None) -> tuple[str, int]:
    store = stores.get(step.store)
    batch_size = options(rt.settings).batch_size
    blocking, subject_holds = _holds(rt, step)
    if blocking:
        held = count(store, step, batch_size)
        _set_step(rt.db, lease, step.id, state="held", finished_at=utcnow(), destroyed=0,
                  skipped={"holds": sorted(h.id for h in blocking), "records": held,
                           "reason": "a legal hold covers this store or category"})
        return "held", 0
    exclude = [h.subject for h in subject_holds]
    skipped = None
    remaining: int | None = None
    if subject_holds:
        remaining = count(store, step, batch_size, exclude)
        skipped = {"holds": sorted(h.id for h in subject_holds), "records": count(store, step, batch_size) - remaining,
                   "reason": "legal holds on subjects"}
    if progress is not None:
        progress.begin(step, remaining if remaining is not None else count(store, step, batch_size, exclude))
    journalled = not dry_run and supports_journal(store)
    with Journal(rt.db, lease, step.id, store=step.store, category=step.category, secret=secret,
                 dry_run=dry_run, committed=store.batch_committed if journalled else None) as journal:
        extra: dict[str, Any] = {"on_batch": journal.prepare} if not dry_run and supports_keys(store) else {}
        if journalled:
            extra["journal"] = journal
        for done in store.expire(step.category, step.cutoff, batch_size=batch_size, dry_run=dry_run,
                                 exclude_subjects=exclude, **extra):
            journal.record(done)
            if progress is not None:
                progress.advance(done)
        total, key_digest = journal.finish()
    _set_step(rt.db, lease, step.id, state="done", destroyed=total, key_digest=key_digest, skipped=skipped,
              finished_at=utcnow())
    return "done", total


def _finish(rt: Any, lease: Lease, error: str | None = None) -> str:
    with rt.db.session() as session:
        lease.renew(session)
        run = session.get(RetentionRun, lease.run_id)
        assert run is not None
        steps = list(session.scalars(select(RetentionStep).where(RetentionStep.run_id == run.id)))
        failed = [s for s in steps if s.state in ("failed", "pending", "running")]
        run.state = "failed" if failed or error else "succeeded"
        run.error = error or ("; ".join(f"{s.store}/{s.category}: {s.error}" for s in failed) or None)
        run.finished_at = utcnow()
        run.lease_token = run.lease_expires_at = run.active_key = None
        leases.release(session, run.id)
        session.flush()
        summary = report(session, run, batches=False)
        details: dict[str, Any] = {"state": run.state, "dry_run": run.dry_run, "totals": summary["totals"]}
        if not run.dry_run:
            token = certificates.issue(rt, session, run, summary)
            run.certificate, run.certificate_sha256 = token, certificates.sha256(token)
            audit.record(session, app_id=None, actor="system", action="retention.certificate_issued",
                         resource_type="retention_run", resource_id=run.id,
                         details={"sha256": run.certificate_sha256, "kid": rt.keys.signer.active_kid,
                                  "totals": summary["totals"]})
            details["certificate_sha256"] = run.certificate_sha256
        audit.record(session, app_id=None, actor="system", action="retention.run_finished",
                     resource_type="retention_run", resource_id=run.id, details=details)
        return run.state
