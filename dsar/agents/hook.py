"""Marks an agent's request for a status sync when its rights request changes (called from dsar.states)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from dsar.agents.models import DrpRequest


def changed(session: Session, dsar_request_id: str) -> None:
    """In the caller's transaction: one UPDATE, matching no row unless an agent made the request. The status
    object is recomputed (and the agent called back) after the commit, by dsar.agents.status.sync_dirty."""
    session.execute(update(DrpRequest).where(DrpRequest.dsar_request_id == dsar_request_id)
                    .values(dirty=True).execution_options(synchronize_session=False))
