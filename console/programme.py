"""The overview's programme figures, each one grouped query returning counts (no rows loaded): on-time
completion and median time to close over the last 90 days, retention destroyed per policy over 30 days, the
ledger's last verification. Windows are taken on indexed columns (dsar due_at, retention runs' created_at)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from consent.verifications import latest
from dsar.models import DsarRequest
from retention.models import RetentionRun, RetentionStep

DONE = ("completed", "partially_completed")  # the request was answered (rejected or cancelled ones were not)


@dataclass(frozen=True)
class Completion:
    due: int  # requests whose deadline fell in the window
    on_time: int  # of those, answered by their deadline
    late_or_open: int  # answered after it, or not answered at all

    @property
    def rate(self) -> float | None:
        return None if not self.due else round(100 * self.on_time / self.due, 1)


def _seconds(session: Session, start: Any, end: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400


def _apps(stmt: Any, app_ids: tuple[int, ...] | None) -> Any:
    return stmt if app_ids is None else stmt.where(DsarRequest.app_id.in_(app_ids))


def completion(session: Session, app_ids: tuple[int, ...] | None, now: datetime, days: int = 90) -> Completion:
    """Of the requests due in the last `days` days (rejected and cancelled ones left out), those answered on
    time. Read through the due_at index."""
    window = and_(DsarRequest.due_at >= now - timedelta(days=days), DsarRequest.due_at < now,
                  DsarRequest.status.not_in(("rejected", "cancelled")))
    on_time = case((and_(DsarRequest.status.in_(DONE), DsarRequest.closed_at <= DsarRequest.due_at), 1), else_=0)
    due, good = session.execute(_apps(select(func.count(), func.sum(on_time)).where(window), app_ids)).one()
    return Completion(int(due or 0), int(good or 0), int(due or 0) - int(good or 0))


def median_close(session: Session, app_ids: tuple[int, ...] | None, now: datetime,
                 days: int = 90) -> dict[str, float]:
    """Per type, the median days from receipt to answer of the requests answered among those due in the last
    `days` days, one number per type: PostgreSQL's percentile_cont, elsewhere the middle row(s) picked by window
    functions."""
    took = _seconds(session, DsarRequest.received_at, DsarRequest.closed_at).label("took")
    answered = (DsarRequest.due_at >= now - timedelta(days=days), DsarRequest.due_at < now + timedelta(days=90),
                DsarRequest.status.in_(DONE), DsarRequest.closed_at.is_not(None),
                DsarRequest.closed_at >= now - timedelta(days=days))
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL's ordered-set aggregate: a quarter of the time of the window functions below (bench/console.py).
        median = func.percentile_cont(0.5).within_group(took)
        rows = session.execute(_apps(select(DsarRequest.type, median).where(*answered), app_ids)
                               .group_by(DsarRequest.type))
        return {t: round(float(s) / 86400, 1) for t, s in rows}
    inner = _apps(select(DsarRequest.type.label("type"), took,
                         func.row_number().over(partition_by=DsarRequest.type, order_by=took).label("rn"),
                         func.count().over(partition_by=DsarRequest.type).label("n"))
                  .where(*answered), app_ids).subquery()
    middle = inner.c.rn.in_(((inner.c.n + 1) / 2, (inner.c.n + 2) / 2))
    rows = session.execute(select(inner.c.type, func.avg(inner.c.took)).where(middle).group_by(inner.c.type))
    return {t: round(float(s) / 86400, 1) for t, s in rows}


def destroyed(session: Session, now: datetime, days: int = 30) -> dict[str, Any]:
    """Real retention runs requested in the last `days` days: how many, and records destroyed per policy."""
    recent = and_(RetentionRun.created_at >= now - timedelta(days=days), RetentionRun.dry_run.is_(False))
    by_state = dict(session.execute(select(RetentionRun.state, func.count()).where(recent)
                                    .group_by(RetentionRun.state)).all())
    per_policy = dict(session.execute(
        select(RetentionStep.policy_key, func.sum(RetentionStep.destroyed))
        .join(RetentionRun, RetentionRun.id == RetentionStep.run_id).where(recent)
        .group_by(RetentionStep.policy_key).order_by(RetentionStep.policy_key)).all())
    return {"runs": {k: int(v) for k, v in by_state.items()},
            "per_policy": {k: int(v or 0) for k, v in per_policy.items()}}


def ledger(session: Session) -> dict[str, Any] | None:
    row = latest(session)
    return None if row is None else {"status": row.status, "mode": row.mode, "started_at": row.started_at,
                                     "finished_at": row.finished_at, "events_checked": row.events_checked,
                                     "breaks": row.breaks}
