"""The Covered Business side of DRP 1.0, callable without Flask: agents' registration, the pair-wise key set-up,
and data rights requests (exercise, status, revoke) mapped onto rights requests and consent records.

Every function works in the caller's session and does not commit; the route, job or command does.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dsar import service as dsar
from dsar.agents import signing
from dsar.agents.models import Agent, AgentToken, DrpRequest, SeenMessage
from dsar.agents.options import drp_options
from dsar.agents.status import DENIALS, app_slug, seal, sync
from dsar.deadlines import deadlines
from dsar.models import DsarRequest
from service import audit, weblinks
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound
from service.runtime import Runtime

log = logging.getLogger(__name__)
VERSION = "1.0"
# Each `exercise` of DRP 1.0 section 3.01 and the rights request it becomes (None: a consent record, below).
EXERCISES: dict[str, str | None] = {
    "access": "access", "access:categories": "access", "access:specific": "access", "deletion": "erasure",
    "sale:opt-out": "consent_withdrawal", "sale:opt-in": None,
}
REGIMES = {"ccpa": "CCPA"}  # and none at all: voluntary (DRP_VOLUNTARY_JURISDICTION's deadline)
AGENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,90}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DrpError(Exception):
    """An error in DRP 1.0's shape (section 3.06): `{"code": "<status>", "message": ..., "fatal"?: bool}`.
    `bare` errors answer with no body (a failed key set-up, section 2.05.1)."""

    def __init__(self, status: int, message: str, *, fatal: bool | None = None, bare: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fatal, self.bare, self.headers = status, message, fatal, bare, headers

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": str(self.status), "message": self.message}
        if self.fatal is not None:
            out["fatal"] = self.fatal
        return out


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # 256 random bits: a plain hash cannot be reversed


# --- agents, registered per app --------------------------------------------------------------------------

@dataclass(frozen=True)
class Registrar:
    app_id: int
    name: str  # the audit trail's actor: "key:<id>" or "cli:..."


def register_agent(session: Session, who: Registrar, data: dict[str, Any]) -> Agent:
    """Accept an agent for the app: its id and verify key from the service directory, the app's business id."""
    try:
        signing.public_key(data["verify_key"])
    except ValueError as exc:
        raise Invalid("invalid verify key", errors={"verify_key": [str(exc).partition(": ")[2]]}) from None
    if session.scalar(select(Agent.id).where(Agent.app_id == who.app_id, Agent.agent_id == data["agent_id"])):
        raise Conflict(f"agent {data['agent_id']!r} is already registered", errors={"agent_id": ["already exists"]})
    other = session.scalar(select(Agent.app_id).where(Agent.business_id == data["business_id"],
                                                      Agent.app_id != who.app_id))
    if other is not None:
        raise Conflict("another app is this Covered Business", errors={"business_id": ["used by another app"]})
    agent = Agent(app_id=who.app_id, agent_id=data["agent_id"], business_id=data["business_id"],
                  verify_key=data["verify_key"], name=data.get("name"),
                  trust_verification=data.get("trust_verification", True), created_at=utcnow())
    session.add(agent)
    session.flush()
    audit.record(session, app_id=who.app_id, actor=who.name, action="drp.agent_registered",
                 resource_type="drp_agent", resource_id=agent.agent_id,
                 details={"business_id": agent.business_id, "trust_verification": agent.trust_verification})
    return agent


def list_agents(session: Session, app_id: int) -> list[Agent]:
    return list(session.scalars(select(Agent).where(Agent.app_id == app_id).order_by(Agent.agent_id)))


def get_agent(session: Session, app_id: int, agent_id: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.app_id == app_id, Agent.agent_id == agent_id))
    if agent is None:
        raise NotFound(f"no agent {agent_id!r}")
    return agent


def revoke_agent(session: Session, who: Registrar, agent_id: str, reason: str) -> Agent:
    """Stop accepting the agent: its tokens stop working at once; its requests go on (and are called back)."""
    agent = get_agent(session, who.app_id, agent_id)
    if agent.revoked_at is not None:
        raise Conflict("the agent is already revoked")
    agent.revoked_at = utcnow()
    session.execute(update(AgentToken).where(AgentToken.agent_pk == agent.id, AgentToken.revoked_at.is_(None))
                    .values(revoked_at=agent.revoked_at))
    audit.record(session, app_id=who.app_id, actor=who.name, action="drp.agent_revoked",
                 resource_type="drp_agent", resource_id=agent.agent_id, details={"reason": reason})
    return agent


# --- messages --------------------------------------------------------------------------------------------

def _check(rt: Runtime, body: bytes, agents: list[Agent], agent_id: str, now: datetime,
           status: int = 403, bare: bool = False) -> tuple[Agent, signing.Verified]:
    opts = drp_options(rt.settings.env)
    try:
        verified = signing.verify(body, [a.verify_key for a in agents], agent_id=agent_id,
                                  business_ids=[a.business_id for a in agents], now=now, skew=opts.skew,
                                  max_window=opts.max_window)
    except signing.Refused as refused:
        # A set-up's refusals are all a bare 403 (2.05.1); elsewhere a message that is not one is a 400.
        raise DrpError(400 if refused.check == "body" and not bare else status, refused.message, fatal=True,
                       bare=bare) from None
    agent = next((a for a in agents if a.business_id == verified.claims["business-id"]
                  and a.verify_key == verified.key), None)
    if agent is None:  # the key of one registration, the business of another
        raise DrpError(status, "business-id does not name this Covered Business", fatal=True, bare=bare)
    return agent, verified


def _first_use(session: Session, verified: signing.Verified, *, bare: bool = False) -> None:
    """Refuse a message seen before (a replay), else remember it until it expires. The insert is in the
    caller's transaction, so a message counts as used exactly when its effect commits."""
    if session.get(SeenMessage, verified.digest) is not None:
        raise DrpError(403 if bare else 409, "this signed message was already used", fatal=True, bare=bare)
    try:
        with session.begin_nested():
            session.add(SeenMessage(digest=verified.digest, expires_at=verified.expires_at))
    except IntegrityError:  # the same message, concurrently
        raise DrpError(403 if bare else 409, "this signed message was already used", fatal=True,
                       bare=bare) from None


def setup(session: Session, rt: Runtime, agent_id: str, body: bytes) -> tuple[Agent, str]:
    """POST /v1/agent/{agent-id}: the signed set-up message, checked in order (signature with the agent's
    directory key, agent-id, business-id, issued-at, expires-at); a new bearer token bound to the agent (older
    ones stop working). Any failure is a bare 403 (section 2.05.1)."""
    agents = list(session.scalars(select(Agent).where(Agent.agent_id == agent_id, Agent.revoked_at.is_(None))))
    if not agents:
        raise DrpError(403, "unknown agent", bare=True)
    agent, verified = _check(rt, body, agents, agent_id, utcnow(), bare=True)
    if verified.claims.get("drp.version", VERSION) != VERSION:
        raise DrpError(403, "unsupported drp.version", bare=True)
    _first_use(session, verified, bare=True)
    now = utcnow()
    session.execute(update(AgentToken).where(AgentToken.agent_pk == agent.id, AgentToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    token = secrets.token_urlsafe(32)
    session.add(AgentToken(token_hash=_token_hash(token), agent_pk=agent.id, created_at=now))
    audit.record(session, app_id=agent.app_id, actor=f"drp:{agent.agent_id}", action="drp.token_issued",
                 resource_type="drp_agent", resource_id=agent.agent_id)
    return agent, token


def authenticate(session: Session, authorization: str) -> Agent:
    """The agent a bearer token was issued to; DrpError 401 without a valid one."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise DrpError(401, "missing bearer token (POST /v1/agent/{agent-id} issues one)",
                       headers={"WWW-Authenticate": 'Bearer realm="drp"'})
    agent = session.scalar(select(Agent).join(AgentToken, AgentToken.agent_pk == Agent.id).where(
        AgentToken.token_hash == _token_hash(token.strip()), AgentToken.revoked_at.is_(None),
        Agent.revoked_at.is_(None)))
    if agent is None:
        raise DrpError(401, "unknown, superseded or revoked bearer token",
                       headers={"WWW-Authenticate": 'Bearer realm="drp", error="invalid_token"'})
    return agent


def agent_info(agent: Agent, agent_id: str) -> dict[str, Any]:
    """GET /v1/agent/{agent-id}: `{}` for the token's own agent, 403 for another (section 2.06.1)."""
    if agent.agent_id != agent_id:
        raise DrpError(403, "the bearer token belongs to another agent")
    return {}


# --- data rights requests --------------------------------------------------------------------------------

def _text(claims: dict[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or _CONTROL.search(value):
        raise DrpError(400, f"{name}: expected a string of 1 to {limit} characters without control characters",
                       fatal=True)
    return value


def _callback_url(rt: Runtime, claims: dict[str, Any]) -> str | None:
    url = _text(claims, "status_callback", 2000)
    if url is None:
        return None
    parts = urlsplit(url)
    allowed = {"https"} if rt.settings.production else {"https", "http"}
    if parts.scheme not in allowed or not parts.hostname:
        raise DrpError(400, f"status_callback: expected an {' or '.join(sorted(allowed))} URL", fatal=True)
    return url


def _identity(claims: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """The rights request's subject from the schema.org/Person claims (and the custom `user_id` claim), and
    whether the agent vouches that one of them is verified. Name and address are not kept: the stores are
    looked up by user id, email or phone."""
    subject = {"user_id": _text(claims, "user_id", 255), "email": _text(claims, "email", 320),
               "phone": _text(claims, "phone_number", 30)}
    subject = {k: v for k, v in subject.items() if v}
    verified = (bool(subject.get("email")) and claims.get("email_verified") is True) or (
        bool(subject.get("phone")) and claims.get("phone_number_verified") is True)
    return subject, verified


def exercise(session: Session, rt: Runtime, agent: Agent, body: bytes) -> DrpRequest:
    """POST /v1/data-rights-request: check the signed message (section 3.07) against the token's agent, refuse a
    replay, and start the request: a rights request for access and deletion, a consent withdrawal of the
    sale/sharing purposes for an opt-out, a consent record for an opt-in. An `agent-request-id` the agent used
    before answers that request again."""
    agent, verified = _check(rt, body, [agent], agent.agent_id, utcnow())
    claims = verified.claims
    if claims.get("drp.version") != VERSION:
        raise DrpError(400, f"drp.version: expected {VERSION!r}", fatal=True)
    kind = claims.get("exercise")
    if kind not in EXERCISES:
        raise DrpError(400, f"Unsupported rights actions submitted: exercise must be one of {list(EXERCISES)}",
                       fatal=True)
    regime = claims.get("regime")
    if regime is not None and not isinstance(regime, str):
        raise DrpError(400, "regime: expected a string", fatal=True)
    relationships = claims.get("relationships")
    if relationships is not None and (not isinstance(relationships, list)
                                      or not all(isinstance(r, str) for r in relationships)):
        raise DrpError(400, "relationships: expected a list of strings", fatal=True)
    ref = _text(claims, "agent-request-id", 200)
    callback = _callback_url(rt, claims)
    subject, vouched = _identity(claims)
    _first_use(session, verified)
    if ref is not None:
        earlier = session.scalar(select(DrpRequest).where(DrpRequest.agent_pk == agent.id,
                                                          DrpRequest.agent_request_id == ref))
        if earlier is not None:
            return earlier
    now = utcnow()
    drp = DrpRequest(id=str(uuid.uuid4()), app_id=agent.app_id, agent_pk=agent.id, agent_request_id=ref,
                     exercise=kind, regime=regime, status_callback=callback, received_at=now, dirty=False)
    session.add(drp)
    actor = dsar.Actor(app_id=agent.app_id, name=f"drp:{agent.agent_id}")
    audit.record(session, app_id=agent.app_id, actor=actor.name, action="drp.request_received",
                 resource_type="drp_request", resource_id=drp.id,
                 details={"exercise": kind, "regime": regime, "relationships": len(relationships or [])})
    opts = drp_options(rt.settings.env)
    jurisdiction = REGIMES[regime] if regime in REGIMES else opts.voluntary_jurisdiction
    if regime is not None and regime not in REGIMES:
        _decide(drp, "denied", "outside_jurisdiction",
                f"regime {regime!r} is not one this business honours (ccpa, or none for voluntary)")
    elif jurisdiction not in deadlines(rt.settings.toml):
        _decide(drp, "denied", "other", "no deadline is configured for voluntary requests")
    elif not subject:
        _decide(drp, "denied", "no_match", "the request names no email, phone_number or user_id")
    elif kind == "sale:opt-in":
        _opt_in(session, rt, agent, drp, subject, vouched and agent.trust_verification)
    else:
        _start(session, rt, agent, drp, actor, EXERCISES[kind] or "", jurisdiction, subject,
               vouched and agent.trust_verification, opts.verification, now)
    session.flush()
    sync(session, rt, drp, notify=False)  # the answer carries this first status; changes are called back
    return drp


def _opt_in(session: Session, rt: Runtime, agent: Agent, drp: DrpRequest, subject: dict[str, str],
            vouched: bool) -> None:
    """An opt-in to sale is consent: only with the person's verified identity, by user id (the key of consent
    records), recorded by a job once this commits (the ledger commits its own writes)."""
    if not vouched:
        _decide(drp, "denied", "insuf_verification", "an opt-in needs the agent's verified identity of the person")
    elif not subject.get("user_id"):
        _decide(drp, "denied", "no_match", "consent records are kept by user_id: the request names none")
    else:
        from dsar.agents import optin

        _decide(drp, "in_progress", None, None)
        drp.opt_in_subject = seal(rt, drp.id, "user_id", subject["user_id"])
        drp_id = drp.id
        event.listen(session, "after_commit", lambda _s: _quietly(optin.enqueue, rt, drp_id), once=True)


def _quietly(enqueue: Any, rt: Runtime, drp_id: str) -> None:
    try:
        enqueue(rt, drp_id)
    except Exception:  # committed: the sweep enqueues it again
        log.warning("drp opt-in %s: not enqueued; the sweep will pick it up", drp_id, exc_info=True)


def _decide(drp: DrpRequest, status: str, reason: str | None, details: str | None) -> None:
    drp.status, drp.reason, drp.details = status, reason, details


def _start(session: Session, rt: Runtime, agent: Agent, drp: DrpRequest, actor: dsar.Actor, kind: str,
           jurisdiction: str, subject: dict[str, str], vouched: bool, window: Any, now: datetime) -> None:
    opt_out = kind == "consent_withdrawal"
    if not (opt_out or vouched) and not subject.get("email"):
        _decide(drp, "denied", "insuf_verification",
                "no verified identity and no email address to send a verification code to")
        return
    data = {"type": kind, "subject": subject, "jurisdiction": jurisdiction, "contact_email": subject.get("email"),
            "details": {"scope": "sale_or_sharing"} if opt_out else None, "verified": opt_out or vouched,
            "locale": None}
    # An opt-out needs no verification (CCPA regulations, 11 CCR 7026(d)); otherwise the agent's verified
    # claims are trusted when its registration says so, else the person confirms with an emailed code.
    method = ("an opt-out of sale needs no verification (11 CCR 7026(d))" if opt_out
              else f"verified claims of authorised agent {agent.agent_id} (DRP)")
    req = dsar.submit(session, rt, actor, data, can_verify=True, method=method)
    drp.dsar_request_id, drp.received_at = req.id, req.received_at  # one receipt time for both
    if req.status == "pending_verification":
        drp.verify_until = now + window
        token, _ = weblinks.mint(session, rt.keys, kind=weblinks.REQUEST, app_id=agent.app_id, request_id=req.id,
                                 ttl=window)
        url = f"{rt.settings.public_url}/privacy/{app_slug(session, agent.app_id)}/link/{token}"
        drp.verification_link = seal(rt, drp.id, "verification_link", url)


def get(session: Session, agent: Agent, request_id: str, *, lock: bool = False) -> DrpRequest:
    """The agent's own request; 404 when none has this id, 403 when another agent made it (section 2.02.1)."""
    stmt = select(DrpRequest).where(DrpRequest.id == request_id)
    drp = session.scalar(stmt.with_for_update() if lock else stmt)
    if drp is None:
        raise DrpError(404, "no such request")
    if drp.agent_pk != agent.id:
        raise DrpError(403, "this request is managed by another agent")
    return drp


def status_of(session: Session, rt: Runtime, agent: Agent, request_id: str) -> dict[str, Any]:
    """GET /v1/data-rights-request/{id}: the status object now (recorded, and called back, if it changed)."""
    return sync(session, rt, get(session, agent, request_id, lock=True))


def revoke(session: Session, rt: Runtime, agent: Agent, request_id: str, body: bytes) -> dict[str, Any]:
    """DELETE /v1/data-rights-request/{id}: the signed revoke message; the rights request is cancelled (which
    only a request not yet executing can be: 409 otherwise) and the status is `revoked`."""
    agent, verified = _check(rt, body, [agent], agent.agent_id, utcnow())
    drp = get(session, agent, request_id, lock=True)
    reason = _text(verified.claims, "reason", 2000)
    _first_use(session, verified)
    if drp.revoked_at is not None:
        return sync(session, rt, drp)
    current = sync(session, rt, drp)["status"]
    if drp.dsar_request_id is None or current not in ("open", "in_progress"):
        raise DrpError(409, f"the request is {current}: only an open or in-progress request can be revoked")
    req = session.get(DsarRequest, drp.dsar_request_id)
    assert req is not None
    try:
        dsar.cancel(session, dsar.Actor(app_id=agent.app_id, name=f"drp:{agent.agent_id}"), req.id,
                    "revoked by the person through their authorised agent")
    except Conflict:
        raise DrpError(409, "the request is already being carried out and can no longer be revoked") from None
    drp.revoked_at = utcnow()
    if reason:
        drp.revoke_reason = seal(rt, drp.id, "revoke_reason", reason)
    audit.record(session, app_id=agent.app_id, actor=f"drp:{agent.agent_id}", action="drp.request_revoked",
                 resource_type="drp_request", resource_id=drp.id, details={"with_reason": bool(reason)})
    session.flush()
    return sync(session, rt, drp)  # the answer carries the new state, and so does a callback (a status update)


def deny(session: Session, rt: Runtime, who: Registrar, request_id: str, reason: str, details: str) -> DrpRequest:
    """An operator denies an agent's request with a DRP reason code (e.g. suspected_fraud, too_many_requests):
    its rights request is rejected (the person is told, as for any rejection) and the agent called back."""
    if reason not in DENIALS:
        raise Invalid("unknown reason", errors={"reason": [f"choose from {list(DENIALS)}"]})
    drp = session.scalar(select(DrpRequest).where(DrpRequest.id == request_id, DrpRequest.app_id == who.app_id)
                         .with_for_update())
    if drp is None:
        raise NotFound(f"no agent request {request_id!r}")
    if drp.dsar_request_id is None:
        raise Conflict(f"the request was decided at intake: {(drp.last or {}).get('status')}")
    drp.reason, drp.details = reason, details
    dsar.reject(session, rt, dsar.Actor(app_id=who.app_id, name=who.name), drp.dsar_request_id,
                f"{reason}: {details}")
    return drp


def forget_seen(session: Session) -> int:
    """Drop the replay guard's digests of messages past their expiry (they are refused as expired anyway)."""
    return session.execute(delete(SeenMessage).where(SeenMessage.expires_at < utcnow())).rowcount
