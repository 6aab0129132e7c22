"""The DRP pass of the scheduler (the `dsar` queue's cron entry, or `flask drp sweep`): deny requests whose person
never confirmed in time, recompute statuses that change with time, re-enqueue lost opt-ins and callbacks, and
forget the replay guard's expired digests."""

from __future__ import annotations

import logging

from sqlalchemy import select

from dsar import service as dsar
from dsar.agents import callbacks, optin
from dsar.agents.models import DrpRequest
from dsar.agents.service import forget_seen
from dsar.agents.status import sync_dirty, sync_one
from dsar.models import DsarRequest
from service.db import utcnow
from service.runtime import Runtime, runtime

log = logging.getLogger(__name__)


def expire_verifications(rt: Runtime) -> int:
    """Reject (through dsar's rejection, which tells the person) every agent's request still waiting for its
    code past the verification window: denied, `insuf_verification`. Each in its own transaction."""
    with rt.db.sessions() as session:
        due = list(session.execute(select(DrpRequest.id, DrpRequest.app_id, DrpRequest.dsar_request_id)
                                   .join(DsarRequest, DsarRequest.id == DrpRequest.dsar_request_id)
                                   .where(DsarRequest.status == "pending_verification",
                                          DrpRequest.verify_until < utcnow())))
    for drp_id, app_id, request_id in due:
        with rt.db.session() as session:
            drp = session.scalar(select(DrpRequest).where(DrpRequest.id == drp_id).with_for_update())
            req = session.get(DsarRequest, request_id)
            if drp is None or req is None or req.status != "pending_verification":
                continue
            drp.reason, drp.details = "insuf_verification", "the person did not confirm the request in time"
            dsar.reject(session, rt, dsar.Actor(app_id=app_id, name="system"), request_id,
                        "insuf_verification: the person did not confirm the request in time")
    return len(due)


def sweep() -> dict[str, int]:
    """The whole pass; each part commits its own work."""
    rt = runtime()
    expired = expire_verifications(rt)
    synced = sync_dirty(rt)
    # Statuses that change with time alone: a verification window or the results' life ends.
    with rt.db.sessions() as session:
        # (fulfilled access requests until their results expire; other fulfilled requests never change again)
        timed = list(session.scalars(select(DrpRequest.id).where(
            DrpRequest.dsar_request_id.is_not(None),
            (DrpRequest.current == "in_progress") | ((DrpRequest.current == "fulfilled")
                                                     & DrpRequest.exercise.like("access%")))))
        opt_ins = list(session.scalars(select(DrpRequest.id).where(DrpRequest.exercise == "sale:opt-in",
                                                                   DrpRequest.status == "in_progress")))
    for drp_id in timed:
        sync_one(rt, drp_id)
    for drp_id in opt_ins:
        try:
            optin.enqueue(rt, drp_id)
        except Exception:  # Redis down: the next pass
            log.warning("drp opt-in %s: not enqueued", drp_id, exc_info=True)
            break
    with rt.db.session() as session:
        forgotten = forget_seen(session)
    return {"verifications_expired": expired, "synced": synced + len(timed), "opt_ins_enqueued": len(opt_ins),
            "seen_forgotten": forgotten, **callbacks.sweep(rt)}
