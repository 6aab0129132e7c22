"""Retention runs, callable without Flask: request (one run per policy at a time), retry, and the report of a run
as the API and the CLI show it. Handing a run to the queue is retention.jobs.dispatch."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retention import policies
from retention.leases import LIVE_STATES, lease_alive
from retention.models import RetentionBatch, RetentionPolicy, RetentionRun, RetentionStep
from retention.periods import cutoff
from service import audit
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound

log = logging.getLogger(__name__)


def active_key(policy_key: str | None, dry_run: bool) -> str:
    """One queued or running run per (policy or all, dry or real): what concurrent triggers converge on."""
    return f"{'policy:' + policy_key if policy_key else 'all'}:{'dry' if dry_run else 'real'}"


def _steps_for(session: Session, run: RetentionRun, targets: Sequence[RetentionPolicy]) -> list[RetentionStep]:
    steps = []
    for position, policy in enumerate(targets):
        version = policies.current(session, policy)
        steps.append(RetentionStep(run_id=run.id, position=position, policy_id=policy.id, policy_key=policy.key,
                                   policy_version=version.version, store=policy.store, category=policy.category,
                                   action=version.action, retain_for=version.retain_for,
                                   cutoff=cutoff(run.as_of, version.retain_for), state="pending"))
    return steps


def _copy_steps(session: Session, run: RetentionRun, source: RetentionRun) -> list[RetentionStep]:
    """A real run doing exactly what a dry run previewed: the same policy versions and the same cutoffs."""
    steps = []
    for old in session.scalars(select(RetentionStep).where(RetentionStep.run_id == source.id)
                               .order_by(RetentionStep.position)):
        policy = session.get(RetentionPolicy, old.policy_id)
        if policy is None or policy.version != old.policy_version or not policy.enabled:
            raise Conflict(f"policy {old.policy_key!r} changed since dry run {source.id}; preview it again",
                           errors={"from_dry_run": ["a policy it previewed has changed or is disabled"]})
        steps.append(RetentionStep(run_id=run.id, position=old.position, policy_id=old.policy_id,
                                   policy_key=old.policy_key, policy_version=old.policy_version, store=old.store,
                                   category=old.category, action=old.action, retain_for=old.retain_for,
                                   cutoff=old.cutoff, state="pending"))
    return steps


def _targets(session: Session, policy_key: str | None) -> list[RetentionPolicy]:
    if policy_key is None:
        found = policies.list_policies(session, enabled=True)
        if not found:
            raise Conflict("there is no enabled retention policy to run")
        return found
    policy = policies.get_policy(session, policy_key)
    if not policy.enabled:
        raise Conflict(f"retention policy {policy_key!r} is disabled", errors={"policy": ["disabled"]})
    return [policy]


def request_run(db: Any, actor: policies.Actor, *, policy_key: str | None = None, dry_run: bool = False,
                trigger: str = "api", from_dry_run: str | None = None,
                on_create: Callable[[Session, str], None] | None = None) -> tuple[str, bool]:
    """Create a run, or return the one already queued or running for the same policy: (run id, created).

    Takes the Database and commits, in transactions of its own: concurrent triggers of the same policy converge
    by one insert winning the unique active key and the others reading the winner in a fresh transaction, which
    a caller's transaction could not do (on SQLite a transaction whose snapshot is stale cannot write). The
    caller owns no unit of work here; `on_create(session, run_id)` joins the transaction that creates the run
    (an idempotency key's claim, say): it commits with the run or not at all."""
    source_policy = policy_key
    if from_dry_run is not None:
        if dry_run:
            raise Invalid("from_dry_run starts a real run", errors={"dry_run": ["must be false with from_dry_run"]})
        with db.sessions() as session:
            source = session.get(RetentionRun, from_dry_run)
            if source is None or not source.dry_run or source.state != "succeeded":
                raise Invalid("not a finished dry run", errors={"from_dry_run": ["not a succeeded dry run"]})
            if policy_key is not None and source.policy_id is not None:
                source_policy_row = session.get(RetentionPolicy, source.policy_id)
                if source_policy_row is None or source_policy_row.key != policy_key:
                    raise Invalid("the dry run previewed another policy", errors={"policy": ["differs"]})
            source_policy = session.scalar(select(RetentionPolicy.key).where(
                RetentionPolicy.id == source.policy_id)) if source.policy_id else None
    key = active_key(source_policy, dry_run)
    for _ in range(3):
        with db.sessions() as session:
            existing = session.scalar(select(RetentionRun.id).where(RetentionRun.active_key == key))
        if existing is not None:
            return existing, False
        try:
            with db.session() as session:
                run = RetentionRun(id=str(uuid.uuid4()), dry_run=dry_run, trigger=trigger, requested_by=actor.name,
                                   state="queued", active_key=key, as_of=utcnow(), source_run_id=from_dry_run)
                if from_dry_run is not None:
                    source = session.get(RetentionRun, from_dry_run)
                    assert source is not None
                    run.policy_id, run.as_of = source.policy_id, source.as_of
                    steps = _copy_steps(session, run, source)
                else:
                    targets = _targets(session, policy_key)
                    run.policy_id = targets[0].id if policy_key is not None else None
                    steps = _steps_for(session, run, targets)
                session.add(run)
                session.flush()  # the unique active_key: a concurrent trigger of the same policy fails here
                session.add_all(steps)
                audit.record(session, app_id=actor.app_id, actor=actor.name, action="retention.run_requested",
                             resource_type="retention_run", resource_id=run.id,
                             details={"policy": source_policy, "dry_run": dry_run, "trigger": trigger,
                                      "from_dry_run": from_dry_run, "steps": len(steps)})
                if on_create is not None:
                    on_create(session, run.id)
                return run.id, True
        except IntegrityError:
            continue  # the concurrent trigger won: return its run on the next pass
    raise Conflict("could not create the run: too much contention; try again")


def schedule_run(session: Session, targets: Sequence[RetentionPolicy], now: datetime) -> RetentionRun:
    """A scheduled run of the policies whose cron slot has come (the caller claimed the slots)."""
    run = RetentionRun(id=str(uuid.uuid4()), dry_run=False, trigger="schedule", requested_by="system",
                       state="queued", active_key=None, as_of=now)
    session.add(run)
    session.flush()
    session.add_all(_steps_for(session, run, targets))
    audit.record(session, app_id=None, actor="system", action="retention.run_requested",
                 resource_type="retention_run", resource_id=run.id,
                 details={"policy": None, "policies": [p.key for p in targets], "dry_run": False,
                          "trigger": "schedule"})
    return run


def job_id(run_id: str) -> str:
    """The RQ job id of a run's job (one per run: the tick looks it up to see whether it still waits)."""
    return f"retention-run-{run_id}"


def get_run(session: Session, run_id: str) -> RetentionRun:
    run = session.get(RetentionRun, run_id)
    if run is None:
        raise NotFound(f"no retention run {run_id!r}")
    return run


def retry_run(session: Session, actor: policies.Actor, run_id: str) -> RetentionRun:
    """Queue a failed or interrupted run again, to continue from its last committed batch (same cutoffs), in the
    caller's transaction; Conflict when it succeeded, is being executed, or another run of its policy is queued
    or running (the caller's transaction is then to be rolled back)."""
    run = get_run(session, run_id)
    if run.state == "succeeded":
        raise Conflict("the run has succeeded; request a new run")
    if lease_alive(run):
        raise Conflict("the run is being executed; a worker holds its lease",
                       detail={"lease_expires_at": run.lease_expires_at.isoformat()
                               if run.lease_expires_at else None})
    for step in session.scalars(select(RetentionStep).where(RetentionStep.run_id == run_id,
                                                            RetentionStep.state.in_(("failed", "running")))):
        step.state, step.error = "pending", None
    if run.active_key is None and run.trigger != "schedule":
        policy_key = session.scalar(select(RetentionPolicy.key).where(
            RetentionPolicy.id == run.policy_id)) if run.policy_id else None
        run.active_key = active_key(policy_key, run.dry_run)
    run.state, run.finished_at, run.error, run.lease_token = "queued", None, None, None
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="retention.run_retried",
                 resource_type="retention_run", resource_id=run_id, details={"attempts": run.attempts})
    try:
        session.flush()  # the unique active key: another live run of the policy fails it here
    except IntegrityError:
        raise Conflict("another run of this policy is queued or running; retry after it ends") from None
    return run


def list_runs(session: Session, *, policy: str | None = None, state: str | None = None,
              dry_run: bool | None = None, trigger: str | None = None, offset: int = 0,
              limit: int = 50) -> tuple[list[RetentionRun], int]:
    stmt = select(RetentionRun)
    if policy is not None:
        stmt = stmt.where(RetentionRun.id.in_(select(RetentionStep.run_id).where(RetentionStep.policy_key == policy)))
    if state is not None:
        stmt = stmt.where(RetentionRun.state == state)
    if dry_run is not None:
        stmt = stmt.where(RetentionRun.dry_run == dry_run)
    if trigger is not None:
        stmt = stmt.where(RetentionRun.trigger == trigger)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = session.scalars(stmt.order_by(RetentionRun.created_at.desc(), RetentionRun.id).offset(offset)
                            .limit(limit))
    return list(items), total


def steps_of(session: Session, run_id: str) -> list[RetentionStep]:
    return list(session.scalars(select(RetentionStep).where(RetentionStep.run_id == run_id)
                                .order_by(RetentionStep.position)))


def report(session: Session, run: RetentionRun, *, batches: bool = True) -> dict[str, Any]:
    """The run as the API shows it: per step the cutoff, batches so far, skips by hold, errors, totals."""
    steps = steps_of(session, run.id)
    journal: dict[int, list[Any]] = {s.id: [] for s in steps}
    if steps:
        for row in session.execute(select(RetentionBatch.step_id, RetentionBatch.seq, RetentionBatch.state,
                                          RetentionBatch.count).where(RetentionBatch.step_id.in_(list(journal)))
                                   .order_by(RetentionBatch.step_id, RetentionBatch.seq)):
            journal[row.step_id].append(row)
    totals: dict[str, dict[str, int]] = {}
    out_steps = []
    for step in steps:
        rows = journal[step.id]
        committed = [r.count for r in rows if r.state == "committed"]
        in_flight = sum(r.count for r in rows if r.state == "prepared")
        count = step.destroyed if step.state == "done" else sum(committed)
        totals.setdefault(step.store, {})[step.category] = totals.get(step.store, {}).get(step.category, 0) + count
        out_steps.append({
            "policy": step.policy_key, "policy_version": step.policy_version, "store": step.store,
            "category": step.category, "action": step.action, "retain_for": step.retain_for, "cutoff": step.cutoff,
            "state": step.state, "count": count, "batches": committed if batches else None,
            "batch_count": len(committed), "in_flight": in_flight, "key_digest": step.key_digest,
            "skipped": step.skipped, "error": step.error, "started_at": step.started_at,
            "finished_at": step.finished_at})
    policy_key = steps[0].policy_key if run.policy_id is not None and steps else None
    return {"id": run.id, "policy": policy_key, "dry_run": run.dry_run, "trigger": run.trigger,
            "requested_by": run.requested_by, "state": run.state, "as_of": run.as_of,
            "from_dry_run": run.source_run_id, "created_at": run.created_at, "started_at": run.started_at,
            "finished_at": run.finished_at, "attempts": run.attempts, "error": run.error,
            "certificate": run.certificate is not None, "certificate_sha256": run.certificate_sha256,
            "steps": out_steps, "totals": totals}


def last_runs(session: Session) -> dict[int, dict[str, Any]]:
    """Per policy id, its latest finished real run (for the data map and the policy view)."""
    latest = (select(RetentionStep.policy_id, func.max(RetentionRun.finished_at).label("at"))
              .join(RetentionRun, RetentionRun.id == RetentionStep.run_id)
              .where(RetentionRun.dry_run.is_(False), RetentionRun.finished_at.is_not(None))
              .group_by(RetentionStep.policy_id).subquery())
    rows = session.execute(
        select(RetentionStep.policy_id, RetentionRun.id, RetentionRun.state, RetentionRun.finished_at,
               RetentionStep.state.label("step_state"), RetentionStep.destroyed, RetentionStep.cutoff)
        .join(RetentionRun, RetentionRun.id == RetentionStep.run_id)
        .join(latest, (latest.c.policy_id == RetentionStep.policy_id) & (latest.c.at == RetentionRun.finished_at))
        .where(RetentionRun.dry_run.is_(False)))
    return {r.policy_id: {"run": r.id, "state": r.step_state, "run_state": r.state, "finished_at": r.finished_at,
                          "count": r.destroyed, "cutoff": r.cutoff} for r in rows}


def live_runs(session: Session) -> list[RetentionRun]:
    return list(session.scalars(select(RetentionRun).where(RetentionRun.state.in_(LIVE_STATES))))
