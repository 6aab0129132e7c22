"""`sale:opt-in`: the person's consent to the purposes marked as a sale or sharing, recorded through the consent
service (ledger, receipt) by a job once the request is saved; the agent is called back with the outcome."""

from __future__ import annotations

import logging

from sqlalchemy import select

from dsar.agents.models import Agent, DrpRequest
from dsar.agents.status import sync
from service import audit
from service.runtime import Runtime, runtime

log = logging.getLogger(__name__)
QUEUE = "dsar"


def enqueue(rt: Runtime, drp_id: str) -> None:
    rt.queue.enqueue(opt_in_job, drp_id, queue=QUEUE, timeout=300)


def opt_in_job(drp_id: str) -> str:
    """The job: grant the sale/sharing purposes the person holds a current consent record for, then decide the
    request (fulfilled; denied `no_match` without such records). Idempotent: it grants only what is not granted,
    and a decided request is left alone. Each consent commits on its own (the ledger's write)."""
    rt = runtime()
    with rt.db.sessions() as session:
        drp = session.get(DrpRequest, drp_id)
        if drp is None or drp.exercise != "sale:opt-in" or drp.status != "in_progress":
            return "nothing to do"
        agent = session.get(Agent, drp.agent_pk)
        assert agent is not None
    user_id = _user_id(rt, drp)
    status, reason, details = _grant(rt, agent, drp, user_id) if user_id else (
        "denied", "no_match", "consent records are kept by user_id: the request names none")
    with rt.db.session() as session:
        drp = session.scalar(select(DrpRequest).where(DrpRequest.id == drp_id).with_for_update())
        if drp is not None and drp.status == "in_progress":
            drp.status, drp.reason, drp.details, drp.opt_in_subject = status, reason, details, None
            sync(session, rt, drp)
    return status


def _user_id(rt: Runtime, drp: DrpRequest) -> str | None:
    if drp.opt_in_subject is None:
        return None
    return rt.keys.fields.decrypt(drp.opt_in_subject, f"drp_request:{drp.id}:user_id").decode()


def _grant(rt: Runtime, agent: Agent, drp: DrpRequest, user_id: str) -> tuple[str, str | None, str | None]:
    from consent.cache import PolicyCache
    from consent.context import Context
    from consent.history import subject_policy_keys
    from consent.policies import sale_purposes
    from consent.record import record_consent
    from consent.status import status
    from service.tenancy import App, Principal

    granted, found, stale = 0, False, []
    with rt.db.sessions() as session:  # reads only: each consent commits on its own
        slug = session.scalar(select(App.slug).where(App.id == agent.app_id)) or ""
        principal = Principal(app_id=agent.app_id, app_slug=slug, key_id=f"drp-{drp.id[:8]}", scopes=frozenset())
        ctx = Context(principal=principal, keys=rt.keys, settings=rt.settings, acting_as=f"drp:{agent.agent_id}")
        for key in subject_policy_keys(session, agent.app_id, ctx.pseudonym(user_id)):
            marked = sale_purposes(session, agent.app_id, key)
            if not marked:
                continue
            found = True
            state = status(session, ctx, PolicyCache(0), user_id, key)
            if state["consented_version"] != state["current_version"] or state["reason"] == "withdrawn":
                # Accepting a newer text, or the required purposes again, is the person's own act.
                stale.append(key)
                continue
            wanted = [p for p in marked if not state["purposes"].get(p)]
            if wanted:
                record_consent(rt.db, ctx, {"subject_id": user_id, "policy": key, "version": state["current_version"],
                                            "purposes": {**state["purposes"], **dict.fromkeys(wanted, True)},
                                            "channel": "drp"})
                granted += len(wanted)
    with rt.db.session() as session:
        audit.record(session, app_id=agent.app_id, actor=f"drp:{agent.agent_id}", action="drp.opt_in",
                     resource_type="drp_request", resource_id=drp.id,
                     details={"purposes_granted": granted, "policies_needing_the_person": stale})
    if not found:
        return "denied", "no_match", "no consent record of this person covers a sale or sharing"
    if stale and not granted:
        return ("denied", "claim_not_covered", "the person must accept the current privacy policy themselves "
                "before opting in")
    return "fulfilled", None, None if granted else "already opted in"
