"""The audit evidence pack: governance's own section (ROPA snapshot, processors with review status, assessments
and approvals, findings open at the end of the period), the ISO/IEC 27701 clause table, and the export that runs
every registered section (`flask evidence`, the API's job)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from governance import assessments, fanout, findings, processors, ropa
from service.evidence import Context, EvidenceSection, PackWriter, Period, export, scrub

CLAUSES_FILE = Path(__file__).with_name("clauses_27701.json")


@cache
def clause_table() -> dict[str, Any]:
    """The clause numbers and titles the pack's sections refer to, and the edition they follow."""
    return json.loads(CLAUSES_FILE.read_text(encoding="utf-8"))


def period_of(start: date, end: date) -> Period:
    """`--from` and `--to` are inclusive days: the period ends at the start of the day after `end`."""
    if end < start:
        raise ValueError("--to is before --from")
    return Period(datetime.combine(start, datetime.min.time(), UTC),
                  datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC))


def _sha(token: str | None) -> str | None:
    return hashlib.sha256(token.encode("ascii")).hexdigest() if token else None


def write(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    end_day = (ctx.period.end - timedelta(days=1)).date()
    snap = ropa.current_snapshot(session)
    if snap is not None:
        view = ropa.snapshot_view(ctx.rt, snap)
        pack.document("governance/ropa_snapshot.json", scrub(ctx, {
            "id": view["id"], "createdAt": view["created_at"], "createdBy": view["created_by"],
            "activities": view["activities"], "sha256": view["sha256"], "tokenSha256": _sha(view["jws"]),
            "ropa": view["ropa"]}))
    register = [{k: v for k, v in p.items() if k not in ("contact",)} for p in processors.register_view(session,
                                                                                                       end_day)]
    for p in register:
        p["erasure"] = {"webhook": bool(p["erasure"]["webhook"]), "email": bool(p["erasure"]["email"])}
        p["reviews"] = [{k: v for k, v in r.items() if k != "notes"} for r in p["reviews"]]
    n_processors = pack.lines("governance/processors.jsonl", scrub(ctx, register))
    approvals = [{**{k: v for k, v in a.items() if k != "jws"}, "tokenSha256": _sha(a["jws"])}
                 for a in assessments.with_approvals(session, ctx.stores)]
    n_assessments = pack.lines("governance/assessments.jsonl", scrub(ctx, approvals))
    open_now = findings.open_findings(session, ctx.stores, end_day, ack_days=fanout.ack_days(ctx.rt.settings.env))
    n_findings = pack.lines("governance/findings_open.jsonl", scrub(ctx, open_now))
    return {"ropaSnapshot": snap.id if snap else None, "processors": n_processors,
            "processorsByReview": _count(register, "review_status"), "assessments": n_assessments,
            "assessmentsByState": _count(approvals, "state"), "openFindings": n_findings}


def _count(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[str(row.get(key))] = out.get(str(row.get(key)), 0) + 1
    return out


SECTION = EvidenceSection("governance", ("7.2.1", "7.2.2", "7.2.5", "7.2.6", "7.2.8", "7.5.1", "7.5.2", "7.5.4",
                                          "6.12.1", "6.15.2.1"), write)


def write_clauses(_session: Session, _ctx: Context, pack: PackWriter) -> dict[str, Any]:
    table = clause_table()
    pack.document("clauses_27701.json", table)
    return {"edition": table["edition"], "clauses": len(table["clauses"])}


CLAUSES_SECTION = EvidenceSection("clauses", (), write_clauses)


def build(session: Session, rt: Any, stores: Any, sections: list[EvidenceSection], period: Period,
          out: str) -> dict[str, Any]:
    """Write the pack of `sections` (the wiring's, in order) and the clause table to `out`."""
    return export(session, Context(rt, stores, period), [*sections, CLAUSES_SECTION], out,
                  clause_table()["clauses"])
