"""Retention's part of the audit evidence pack: the runs in the period (with their steps' counts) and every
destruction certificate they issued."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retention.models import RetentionRun
from service.evidence import Context, EvidenceSection, PackWriter, keyset


def write(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    p = ctx.period
    r_ = RetentionRun
    stmt = (select(r_.id, r_.policy_id, r_.dry_run, r_.trigger, r_.state, r_.as_of, r_.created_at, r_.started_at,
                   r_.finished_at, r_.attempts, r_.error, r_.certificate_sha256)
            .where(r_.created_at >= p.start, r_.created_at < p.end))
    states: dict[str, int] = {}

    def runs() -> Any:
        for r in keyset(session, stmt, r_.id):
            states[r.state] = states.get(r.state, 0) + 1
            yield {"id": r.id, "policy": r.policy_id, "dryRun": r.dry_run, "trigger": r.trigger, "state": r.state,
                   "asOf": r.as_of, "createdAt": r.created_at, "startedAt": r.started_at,
                   "finishedAt": r.finished_at, "attempts": r.attempts, "error": r.error,
                   "certificateSha256": r.certificate_sha256}

    n = pack.lines("retention/runs.jsonl", runs())
    certs = select(r_.id, r_.certificate).where(r_.certificate.is_not(None), r_.created_at >= p.start,
                                                 r_.created_at < p.end)
    n_certs = pack.lines("retention/destruction_certificates.jsonl",
                         ({"run": r.id, "certificate": r.certificate} for r in keyset(session, certs, r_.id)))
    return {"runs": n, "byState": states, "destructionCertificates": n_certs}


SECTION = EvidenceSection("retention", ("7.4.5", "7.4.7", "7.4.8"), write)
