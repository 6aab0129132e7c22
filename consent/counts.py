"""Consent counts kept incrementally: `fold` adds ledger events (in id order, behind a lag) to daily counts per
policy and purpose; `rates` answers the console's weekly consent rates from those counts plus the unfolded tail."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent.checkpoint import horizon_at
from consent.models import ConsentCount, ConsentCountMark, ConsentEvent
from service.config import env_int
from service.db import Database, utcnow

# An id is made just before its insert commits: an event younger than this may still be joined by one with a
# lower id, so the fold leaves it to the next run (rates() counts it directly meanwhile).
LAG = timedelta(minutes=2)
BATCH = 10000
SLACK = timedelta(hours=1)
MARK = 1
# The counts row carrying a day's events and those with GPC (purpose keys are never empty: consent.schemas.KEY).
DAY = ""
_COUNTS = ConsentCount.__table__
_MARKS = ConsentCountMark.__table__


def interval_seconds() -> int:
    """How often the scheduler folds new events (CONSENT_COUNTS_SECONDS, default a minute)."""
    return env_int(os.environ, "CONSENT_COUNTS_SECONDS", 60, minimum=10)


@dataclass
class Folded:
    events: int = 0
    batches: int = 0
    last_id: str | None = None


def _insert(session: Session, table: Any) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)


def _lock_mark(session: Session) -> str | None:
    """The watermark, its row locked until the transaction ends (SQLite serialises writers by itself)."""
    session.execute(_insert(session, _MARKS).values(id=MARK, last_id=None).on_conflict_do_nothing())
    return session.execute(select(_MARKS.c.last_id).where(_MARKS.c.id == MARK).with_for_update()).scalar_one()


def _on(value: Any) -> bool:
    return value is True


def fold_batch(session: Session, *, horizon: str, batch: int = BATCH) -> tuple[int, str | None]:
    """Fold up to `batch` events above the watermark and below `horizon` into the counts and advance the
    watermark, in the caller's transaction. Returns (events folded, new watermark)."""
    mark = _lock_mark(session)
    stmt = (select(ConsentEvent.id, ConsentEvent.policy_id, ConsentEvent.created_at, ConsentEvent.kind,
                   ConsentEvent.purposes, ConsentEvent.gpc)
            .where(ConsentEvent.id < horizon).order_by(ConsentEvent.id).limit(batch))
    if mark is not None:
        stmt = stmt.where(ConsentEvent.id > mark)
    rows = session.execute(stmt).all()
    if not rows:
        return 0, mark
    sums: dict[tuple[int, date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for _id, policy_id, created_at, kind, purposes, gpc in rows:
        day = created_at.date()
        total = sums[(policy_id, day, DAY)]
        total[3] += 1
        total[4] += 1 if gpc else 0
        for key, value in (purposes or {}).items():
            counts = sums[(policy_id, day, key)]
            if kind == "withdrawal":
                counts[2] += 0 if _on(value) else 1
            else:
                counts[0 if _on(value) else 1] += 1
    values = [{"policy_id": p, "day": d, "purpose": k, "granted": c[0], "denied": c[1], "withdrawn": c[2],
               "events": c[3], "gpc": c[4]} for (p, d, k), c in sums.items()]
    stmt = _insert(session, _COUNTS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["policy_id", "day", "purpose"],
        set_={name: getattr(_COUNTS.c, name) + getattr(stmt.excluded, name)
              for name in ("granted", "denied", "withdrawn", "events", "gpc")})
    session.execute(stmt, values)
    last = rows[-1][0]
    session.execute(_MARKS.update().where(_MARKS.c.id == MARK).values(last_id=last, folded_at=utcnow()))
    return len(rows), last


def fold(db: Database, *, now: datetime | None = None, lag: timedelta = LAG, batch: int = BATCH) -> Folded:
    """Fold every event made before `now - lag` not yet counted, one transaction per batch (each advancing the
    watermark with its counts, so a crash loses nothing and a second run, concurrent or not, adds nothing twice)."""
    horizon = horizon_at((now or utcnow()) - lag)
    done = Folded()
    while True:
        with db.session() as session:
            n, last = fold_batch(session, horizon=horizon, batch=batch)
        done.last_id = last
        if not n:
            return done
        done.events += n
        done.batches += 1
        if n < batch:
            return done


def _week(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


def _week_sql(session: Session) -> Any:
    """The start of an event's week (Monday, UTC) as text, in the database's own terms."""
    if session.get_bind().dialect.name == "postgresql":
        # constants written into the SQL, not bound: PostgreSQL matches GROUP BY to the select list by text
        return func.to_char(func.date_trunc(literal_column("'week'"), ConsentEvent.created_at),
                            literal_column("'YYYY-MM-DD'"))
    return func.date(ConsentEvent.created_at, literal_column("'weekday 0'"), literal_column("'-6 days'"))


def direct(session: Session, *where: Any) -> tuple[dict[str, list[int]], dict[tuple[str, str], list[int]]]:
    """Count the events matching `where` straight from the ledger, grouped in SQL (the purposes' JSON expanded by
    the database): per week [events, gpc], per (week, purpose) [granted, denied, withdrawn]."""
    week = _week_sql(session).label("week")
    totals = {w: [int(n), int(g or 0)] for w, n, g in session.execute(
        select(week, func.count(), func.sum(case((ConsentEvent.gpc.is_(True), 1), else_=0)))
        .where(*where).group_by(week))}
    postgres = session.get_bind().dialect.name == "postgresql"
    each = (func.json_each_text(ConsentEvent.purposes) if postgres else func.json_each(ConsentEvent.purposes)) \
        .table_valued("key", "value")
    on = each.c.value.in_(("true",)) if postgres else each.c.value == 1
    withdrawal = ConsentEvent.kind == "withdrawal"
    stmt = (select(week, each.c.key, func.sum(case(((~withdrawal) & on, 1), else_=0)),
                   func.sum(case(((~withdrawal) & ~on, 1), else_=0)),
                   func.sum(case((withdrawal & ~on, 1), else_=0)))
            .select_from(ConsentEvent).join(each, literal_column("1") == 1).where(*where)
            .group_by(week, each.c.key))
    counts = {(w, p): [int(a or 0), int(b or 0), int(c or 0)] for w, p, a, b, c in session.execute(stmt)}
    return totals, counts


def rates(session: Session, policy_id: int, since: datetime) -> dict[str, Any]:
    """Per week and purpose: events granting, denying and withdrawing it; per week: events and those with GPC;
    for events made at or after `since`. The folded days after `since`'s come from the counts; `since`'s own day
    (partly in range) and events above the watermark are counted from the ledger, so the answer is exact."""
    mark = session.execute(select(_MARKS.c.last_id).where(_MARKS.c.id == MARK)).scalar()
    first = since.date()
    next_day = datetime.combine(first + timedelta(days=1), datetime.min.time(), since.tzinfo)
    # since's day by id range as well as by time, so the primary key finds it (consent.chain makes an event's
    # id just before its created_at, from the same clock; an hour either side to spare)
    partial = and_(ConsentEvent.id >= horizon_at(since - SLACK),
                   ConsentEvent.id < horizon_at(next_day + SLACK), ConsentEvent.created_at < next_day)
    tail = or_(partial, ConsentEvent.id > mark) if mark is not None else literal_column("1") == 1
    totals, counts = direct(session, ConsentEvent.policy_id == policy_id, ConsentEvent.created_at >= since, tail)
    if mark is not None:
        for day, purpose, granted, denied, withdrawn, events, gpc in session.execute(
                select(_COUNTS.c.day, _COUNTS.c.purpose, _COUNTS.c.granted, _COUNTS.c.denied, _COUNTS.c.withdrawn,
                       _COUNTS.c.events, _COUNTS.c.gpc)
                .where(_COUNTS.c.policy_id == policy_id, _COUNTS.c.day > first)):
            week = _week(day)
            if purpose == DAY:
                if events:
                    total = totals.setdefault(week, [0, 0])
                    total[0] += events
                    total[1] += gpc
            else:
                row = counts.setdefault((week, purpose), [0, 0, 0])
                row[0] += granted
                row[1] += denied
                row[2] += withdrawn
    return {"weeks": [{"week": w, "events": n, "gpc": g} for w, (n, g) in sorted(totals.items())],
            "purposes": [{"week": w, "purpose": p, "granted": a, "denied": b, "withdrawn": c}
                         for (w, p), (a, b, c) in sorted(counts.items())]}
