"""Does a subject need to (re)consent to a policy's current version: the read every product app makes at start.

Two entry points share the query and the answer: `status` inside a session, `status_raw` on the hot path's
autocommit connection (consent.fastpath and the status route).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from consent.cache import PolicyCache
from consent.context import Context
from consent.models import ConsentEvent
from consent.views import PolicyView, VersionView, current_version
from service.db import RawConnection, utcnow
from service.errors import Conflict

# Built once: the hot path then only binds parameters to an already-compiled statement.
_LATEST_EVENT = (
    select(ConsentEvent.version_id, ConsentEvent.kind, ConsentEvent.purposes)
    .where(ConsentEvent.policy_id == bindparam("policy_id"), ConsentEvent.subject == bindparam("subject"))
    .order_by(ConsentEvent.seq.desc())
    .limit(1)
)


def status(session: Session, ctx: Context, cache: PolicyCache, subject_id: str, policy_key: str,
           now: datetime | None = None) -> dict[str, Any]:
    """Does this subject need to (re)consent to the policy's current version, and why; read in `session`."""
    view = cache.get(session, ctx.principal.app_id, policy_key)
    current, now = _in_effect(view, policy_key, now)
    row = session.execute(_LATEST_EVENT, {"policy_id": view.id, "subject": ctx.pseudonym(subject_id)}).first()
    return _answer(view, current, now, row)


def status_raw(reader: RawConnection, ctx: Context, cache: PolicyCache, subject_id: str, policy_key: str,
               now: datetime | None = None) -> dict[str, Any]:
    """`status` for the hot path: its one query through `reader` (autocommit, outside any transaction), policy
    metadata from the cache (which opens its own session on a miss), so no session is created at all."""
    view = cache.get(None, ctx.principal.app_id, policy_key)
    current, now = _in_effect(view, policy_key, now)
    row = reader.first(_LATEST_EVENT, {"policy_id": view.id, "subject": ctx.pseudonym(subject_id)})
    return _answer(view, current, now, row)


def _in_effect(view: PolicyView, policy_key: str, now: datetime | None) -> tuple[VersionView, datetime]:
    """The version in effect and the time it was judged at; a policy with none yet is a conflict."""
    now = now or utcnow()
    current = current_version(view.versions, now)
    if current is None:
        raise Conflict(f"policy {policy_key!r} has no version in effect yet")
    return current, now


def _answer(view: PolicyView, current: VersionView, now: datetime, last: Any) -> dict[str, Any]:
    """The status body, from the subject's latest event (version id, kind, purposes) or None when there is none."""
    result: dict[str, Any] = {"consent_required": False, "reason": None, "current_version": current.version,
                              "consented_version": None, "purposes": {}}
    if last is None:
        result.update(consent_required=True, reason="no_consent")
        return result
    version_id, kind, purposes = last[0], last[1], last[2]
    if isinstance(purposes, str | bytes):  # the raw connection returns JSON as the driver does
        purposes = json.loads(purposes)
    consented = next(v for v in view.versions if v.id == version_id)
    result["consented_version"] = consented.version
    result["purposes"] = purposes
    withdrawn_required = any(not purposes.get(key, False) for key in view.required)
    if kind == "withdrawal" and (withdrawn_required or not any(purposes.values())):
        result.update(consent_required=True, reason="withdrawn")
    elif any(v.material and (consented.effective_at, consented.id) < (v.effective_at, v.id)
             for v in view.versions if v.effective_at <= now):
        result.update(consent_required=True, reason="new_version")
    return result
