"""Destruction certificates: a JWS signed with the service's keys (verify with /.well-known/jwks.json) stating
what a finished run destroyed, under which policy versions and cutoffs, with a digest of the record keys."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retention.digest import ALGORITHM
from retention.models import RetentionPolicy, RetentionPolicyVersion, RetentionRun
from service.db import utcnow
from service.errors import NotFound

CERTIFICATE_TYPE = "retention-destruction-certificate"


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _bases(session: Session, keys: set[str]) -> dict[tuple[str, int], str]:
    rows = session.execute(select(RetentionPolicy.key, RetentionPolicyVersion.version, RetentionPolicyVersion.basis)
                           .join(RetentionPolicyVersion, RetentionPolicyVersion.policy_id == RetentionPolicy.id)
                           .where(RetentionPolicy.key.in_(sorted(keys))))
    return {(r.key, r.version): r.basis for r in rows}


def claims(rt: Any, session: Session, run: RetentionRun, summary: dict[str, Any]) -> dict[str, Any]:
    """The certificate's payload: the run, and per policy step its version, basis, cutoff, count and digest."""
    bases = _bases(session, {s["policy"] for s in summary["steps"]})
    steps = [{
        "policy": s["policy"], "policyVersion": s["policy_version"],
        "basis": bases.get((s["policy"], s["policy_version"])), "store": s["store"], "category": s["category"],
        "action": s["action"], "retainFor": s["retain_for"], "cutoff": _iso(s["cutoff"]), "state": s["state"],
        "count": s["count"], "batches": s["batch_count"], "keyDigest": s["key_digest"],
        "skippedByHold": s["skipped"] if s["skipped"] and s["skipped"].get("holds") else None,
        "error": s["error"],
    } for s in summary["steps"]]
    return {
        "iss": rt.settings.issuer,
        "sub": f"urn:retention-run:{run.id}",
        "jti": run.id,
        "iat": int(utcnow().timestamp()),
        "type": CERTIFICATE_TYPE,
        "controller": rt.settings.controller.name,
        "run": {"id": run.id, "trigger": run.trigger, "requestedBy": run.requested_by, "state": run.state,
                "asOf": _iso(run.as_of), "startedAt": _iso(run.started_at), "finishedAt": _iso(run.finished_at),
                "attempts": run.attempts, "fromDryRun": run.source_run_id},
        "steps": steps,
        "totals": summary["totals"],
        "keyDigestAlg": ALGORITHM,
    }


def issue(rt: Any, session: Session, run: RetentionRun, summary: dict[str, Any]) -> str:
    return rt.keys.signer.sign(claims(rt, session, run, summary), typ="JWT")


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def certificate_of(session: Session, run_id: str) -> RetentionRun:
    run = session.get(RetentionRun, run_id)
    if run is None:
        raise NotFound(f"no retention run {run_id!r}")
    if run.dry_run:
        raise NotFound("a dry run destroys nothing and has no certificate")
    if run.certificate is None:
        raise NotFound("the run has not finished; its certificate is issued when it does")
    return run
