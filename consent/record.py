"""Recording and withdrawing consent: the checks against the policy, then one append to the subject's chain.

Both commit (through consent.chain.append_and_commit): the ledger's write is durable on its own, so they take the
`Database`, not a session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from consent.cache import PolicyCache
from consent.chain import NewEvent, append_and_commit, current_version, current_version_and_tail
from consent.context import Context
from consent.models import ConsentEvent, PolicyVersion
from consent.views import PolicyView, VersionRow
from service.db import Database, utcnow
from service.errors import Conflict, Invalid, NotFound


def record_consent(db: Database, ctx: Context, data: dict[str, Any], gpc_header: bool = False,
                   cache: PolicyCache | None = None) -> NewEvent:
    """Record consent to the current version, and commit it. On PostgreSQL: one read and one write round trip
    through this thread's autocommit connection."""
    policy = (cache or PolicyCache(0, db.sessions)).get(None, ctx.principal.app_id, data["policy"])
    subject = ctx.pseudonym(data["subject_id"])
    # Always the current version from the database: a cached one could accept consent to a superseded text.
    if db.dialect == "postgresql":
        with db.autocommit() as raw:
            current, tail = current_version_and_tail(raw, policy.id, subject, utcnow())
            version = _checked(policy, current, data["version"])
            return append_and_commit(db, ctx, policy, version, subject, "consent", raw=raw, tail=tail,
                                     **_fields(policy, data, gpc_header))
    with db.sessions() as session:
        current = current_version(session, policy.id, utcnow())
    version = _checked(policy, current, data["version"])
    return append_and_commit(db, ctx, policy, version, subject, "consent", **_fields(policy, data, gpc_header))


def _checked(policy: PolicyView, current: VersionRow | None, version: str) -> VersionRow:
    """The current version, when it is the one the subject was shown."""
    if current is None:
        raise Conflict(f"policy {policy.key!r} has no version in effect yet")
    if version != current.version:
        raise Conflict(f"version {version!r} is not the current version of {policy.key!r}",
                       detail={"current_version": current.version})
    return current


def _fields(policy: PolicyView, data: dict[str, Any], gpc_header: bool) -> dict[str, Any]:
    """The event's state and fields, the answers checked against the policy's purposes and GPC applied."""
    answers: dict[str, bool] = data["purposes"]
    known = {p.key: p for p in policy.purposes}
    errors: dict[str, list[str]] = {}
    for key in answers:
        if key not in known:
            errors[key] = ["the policy has no such purpose"]
    for key, purpose in known.items():
        if purpose.required and not answers.get(key, False):
            errors[key] = ["required purpose: consent cannot be refused or left out"]
    if errors:
        raise Invalid("invalid purposes", errors={"purposes": errors})
    gpc = bool(data.get("gpc")) or gpc_header
    state = {key: bool(answers.get(key, False)) for key in known}
    gpc_denied = []
    if gpc:
        # A Global Privacy Control signal is a valid opt-out: it wins over the app's toggles.
        for key, purpose in known.items():
            if purpose.honors_gpc:
                state[key] = False
                gpc_denied.append(key)
    evidence = {k: str(v) for k, v in (data.get("evidence") or {}).items() if v is not None} or None
    return {"purposes": state, "gpc": gpc, "gpc_denied": gpc_denied, "channel": data["channel"],
            "locale": data.get("locale"), "evidence": evidence}


def withdraw(db: Database, ctx: Context, data: dict[str, Any], cache: PolicyCache | None = None) -> NewEvent:
    """Withdraw consent for the purposes named (all when none are), and commit it."""
    with db.sessions() as session:
        policy = (cache or PolicyCache(0)).get(session, ctx.principal.app_id, data["policy"])
        subject = ctx.pseudonym(data["subject_id"])
        last = session.scalar(
            select(ConsentEvent).where(ConsentEvent.policy_id == policy.id, ConsentEvent.subject == subject)
            .order_by(ConsentEvent.seq.desc()).limit(1))
        if last is None:
            raise NotFound("no consent recorded for this subject and policy")
        keys = data.get("purposes")
        if keys is None:
            keys = list(last.purposes)
        unknown = [k for k in keys if k not in last.purposes]
        if unknown:
            raise Invalid("invalid purposes", errors={"purposes": {k: ["the policy has no such purpose"]
                                                                    for k in unknown}})
        state = {**last.purposes, **{k: False for k in keys}}
        version = VersionRow.of(session.get(PolicyVersion, last.version_id))
    return append_and_commit(db, ctx, policy, version, subject, "withdrawal", state, gpc=False, gpc_denied=[],
                             channel=data.get("channel") or last.channel, locale=last.locale, evidence=None)
