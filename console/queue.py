"""The request queue, read-only: filters, sort and server-side pagination over every app the operator may see,
the filtered list as CSV rows (no personal data: ids, app, type, state, law and dates) and the open counts of
the overview. Plain column reads (never the encrypted identity), narrowed by the indexed columns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from dsar.models import FINAL, STATES, TYPES, DsarRequest
from service.db import utcnow
from service.tenancy import App

SORTS = {
    "due": (DsarRequest.due_at.asc(), DsarRequest.id.asc()),
    "-due": (DsarRequest.due_at.desc(), DsarRequest.id.desc()),
    "received": (DsarRequest.received_at.desc(), DsarRequest.id.desc()),
    "-received": (DsarRequest.received_at.asc(), DsarRequest.id.asc()),
}
PAGE_SIZES = (25, 50, 100)
OPEN = "open"  # the state filter's "any state not final"
COLUMNS = (DsarRequest.id, App.slug.label("app"), DsarRequest.type, DsarRequest.status, DsarRequest.jurisdiction,
           DsarRequest.received_at, DsarRequest.due_at, DsarRequest.extended_at, DsarRequest.verified_at,
           DsarRequest.closed_at)
CSV_HEADER = ("id", "app", "type", "state", "jurisdiction", "received_at", "due_at", "overdue", "extended",
              "verified_at", "closed_at")


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    type: str | None = None
    app: str | None = None  # slug
    jurisdiction: str | None = None
    due_before: date | None = None  # due on or before this day (UTC)
    overdue: bool | None = None
    sort: str = "due"
    page: int = 1
    page_size: int = PAGE_SIZES[0]

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """The filters as URL query arguments (defaults left out), with `changes` applied."""
        chosen = replace(self, **changes)
        args = {"state": chosen.state, "type": chosen.type, "app": chosen.app, "jurisdiction": chosen.jurisdiction,
                "due_before": chosen.due_before.isoformat() if chosen.due_before else None,
                "overdue": None if chosen.overdue is None else ("yes" if chosen.overdue else "no"),
                "sort": None if chosen.sort == "due" else chosen.sort,
                "page": None if chosen.page == 1 else chosen.page,
                "page_size": None if chosen.page_size == PAGE_SIZES[0] else chosen.page_size}
        return {k: v for k, v in args.items() if v is not None}


def parse(args: Mapping[str, str], jurisdictions: list[str]) -> tuple[Filters, dict[str, str]]:
    """Filters from query arguments; each bad one is dropped and named in the errors (field -> code)."""
    errors: dict[str, str] = {}

    def pick(name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
        value = (args.get(name) or "").strip()
        if value and value not in allowed:
            errors[name] = "choice"
            return None
        return value or None

    state, type_ = pick("state", (OPEN, *STATES)), pick("type", TYPES)
    jurisdiction = pick("jurisdiction", jurisdictions)
    app = (args.get("app") or "").strip() or None
    if app is not None and len(app) > 64:
        errors["app"], app = "choice", None
    due_before = None
    if args.get("due_before"):
        try:
            due_before = date.fromisoformat(args["due_before"].strip())
        except ValueError:
            errors["due_before"] = "date"
    overdue = {"": None, "yes": True, "no": False}.get((args.get("overdue") or "").strip(), None)
    if (args.get("overdue") or "").strip() not in ("", "yes", "no"):
        errors["overdue"] = "choice"
    sort = pick("sort", tuple(SORTS)) or "due"
    page, page_size = _number(args.get("page"), 1), _number(args.get("page_size"), PAGE_SIZES[0])
    if page is None or page < 1 or page > 100_000:
        errors["page"], page = "number", 1
    if page_size not in PAGE_SIZES:
        errors["page_size"], page_size = "choice", PAGE_SIZES[0]
    return Filters(state, type_, app, jurisdiction, due_before, overdue, sort, page or 1,
                   page_size or PAGE_SIZES[0]), errors


def _number(text: str | None, default: int) -> int | None:
    if not text:
        return default
    return int(text) if text.strip().isdigit() and len(text) < 8 else None


def _filtered(columns: Any, filters: Filters, app_ids: tuple[int, ...] | None, now: datetime) -> Select[Any]:
    stmt = select(*columns).select_from(DsarRequest)
    if columns is COLUMNS:  # the rows shown name their app; the count needs no join
        stmt = stmt.join(App, App.id == DsarRequest.app_id)
    if app_ids is not None:
        stmt = stmt.where(DsarRequest.app_id.in_(app_ids))
    if filters.app:
        stmt = stmt.where(DsarRequest.app_id == select(App.id).where(App.slug == filters.app).scalar_subquery())
    if filters.state == OPEN:
        stmt = stmt.where(DsarRequest.status.not_in(FINAL))
    elif filters.state:
        stmt = stmt.where(DsarRequest.status == filters.state)
    if filters.type:
        stmt = stmt.where(DsarRequest.type == filters.type)
    if filters.jurisdiction:
        stmt = stmt.where(DsarRequest.jurisdiction == filters.jurisdiction)
    if filters.due_before:
        end = datetime.combine(filters.due_before + timedelta(days=1), time(), tzinfo=now.tzinfo)
        stmt = stmt.where(DsarRequest.due_at < end)
    if filters.overdue is not None:
        late = (DsarRequest.due_at < now) & DsarRequest.status.not_in(FINAL)
        stmt = stmt.where(late if filters.overdue else ~late)
    return stmt


def page(session: Session, filters: Filters, app_ids: tuple[int, ...] | None,
         now: datetime | None = None) -> tuple[list[Any], int]:
    """One page of rows (named tuples of COLUMNS) and how many match."""
    now = now or utcnow()
    total = session.scalar(_filtered((func.count(),), filters, app_ids, now)) or 0
    rows = session.execute(_filtered(COLUMNS, filters, app_ids, now).order_by(*SORTS[filters.sort])
                           .offset((filters.page - 1) * filters.page_size).limit(filters.page_size)).all()
    return list(rows), total


def csv_rows(session: Session, filters: Filters, app_ids: tuple[int, ...] | None,
             now: datetime | None = None, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
    """Every matching row, in the chosen order, as CSV fields (streamed `batch` rows per round trip)."""
    now = now or utcnow()
    yield CSV_HEADER
    stmt = _filtered(COLUMNS, filters, app_ids, now).order_by(*SORTS[filters.sort])
    for r in session.execute(stmt.execution_options(yield_per=batch)):
        yield (r.id, r.app, r.type, r.status, r.jurisdiction, _iso(r.received_at), _iso(r.due_at),
               "yes" if overdue(r.status, r.due_at, now) else "no", "yes" if r.extended_at else "no",
               _iso(r.verified_at), _iso(r.closed_at))


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def overdue(status: str, due_at: datetime, now: datetime | None = None) -> bool:
    return status not in FINAL and due_at < (now or utcnow())


@dataclass(frozen=True)
class Overview:
    by_state: dict[str, int]
    by_type: dict[str, int]
    open: int
    overdue: int
    due_soon: int  # open, due within 7 days and not overdue


def overview(session: Session, app_ids: tuple[int, ...] | None, now: datetime | None = None) -> Overview:
    """Open requests by state and by type, overdue and due in the next 7 days."""
    now = now or utcnow()
    stmt = select(DsarRequest.status, DsarRequest.type, func.count(),
                  func.sum(_when(DsarRequest.due_at < now)),
                  func.sum(_when((DsarRequest.due_at >= now) & (DsarRequest.due_at < now + timedelta(days=7)))))
    stmt = stmt.where(DsarRequest.status.not_in(FINAL))
    if app_ids is not None:
        stmt = stmt.where(DsarRequest.app_id.in_(app_ids))
    by_state: dict[str, int] = {}
    by_type: dict[str, int] = {}
    late = soon = 0
    for status, type_, count, n_late, n_soon in session.execute(stmt.group_by(DsarRequest.status,
                                                                               DsarRequest.type)):
        by_state[status] = by_state.get(status, 0) + count
        by_type[type_] = by_type.get(type_, 0) + count
        late, soon = late + int(n_late or 0), soon + int(n_soon or 0)
    return Overview(by_state, by_type, sum(by_state.values()), late, soon)


def _when(condition: Any) -> Any:
    return case((condition, 1), else_=0)
