"""The consent ledger's hash chain: how an event's hash is computed, and the check that recomputes every chain."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import ConsentEvent
from service.audit import AuditEvent
from service.crypto.signing import canonical_json

CONTENT_FIELDS = ("id", "app_id", "policy_id", "version_id", "subject", "seq", "kind", "purposes", "gpc",
                  "channel", "locale", "evidence", "created_at", "prev_hash")


def content_hash(event: ConsentEvent) -> str:
    """SHA-256 over the canonical JSON of the event's content, which includes the previous event's hash."""
    content = {name: getattr(event, name) for name in CONTENT_FIELDS}
    content["created_at"] = event.created_at.isoformat(timespec="microseconds")
    if event.evidence is not None:
        content["evidence"] = base64.b64encode(event.evidence).decode()
    return hashlib.sha256(canonical_json(content)).hexdigest()


@dataclass(frozen=True)
class Break:
    event_id: str
    subject: str
    problem: str

    def __str__(self) -> str:
        return f"event {self.event_id} (subject {self.subject[:12]}…): {self.problem}"


def _chains(session: Session, batch: int) -> Iterator[list[ConsentEvent]]:
    """Yield each subject's events in chain order, streaming the table in key order."""
    stmt = select(ConsentEvent).order_by(ConsentEvent.subject, ConsentEvent.seq).execution_options(yield_per=batch)
    chain: list[ConsentEvent] = []
    for event in session.scalars(stmt):
        if chain and chain[0].subject != event.subject:
            yield chain
            chain = []
        chain.append(event)
    if chain:
        yield chain


class _Tombstones:
    """Where erased events sat in their chains (audited by `consent.erased`): hash -> (seq, previous hash).

    Loaded on the first gap only: a ledger without partial erasures never reads them.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._by_hash: dict[str, tuple[int, str | None]] | None = None

    def bridges(self, event: ConsentEvent, prev: ConsentEvent | None) -> bool:
        """Do erased events, each audited with its place, link `event` back to `prev` (or the chain's start)?"""
        if self._by_hash is None:
            rows = self._session.scalars(select(AuditEvent.details).where(
                AuditEvent.resource_type == "consent_event", AuditEvent.action == "consent.erased"))
            self._by_hash = {d["hash"]: (d["seq"], d.get("prev_hash")) for d in rows
                             if isinstance(d, dict) and "hash" in d and "seq" in d}
        first = prev.seq + 1 if prev else 1
        link, seq = event.prev_hash, event.seq - 1
        while seq >= first:
            found = self._by_hash.get(link) if link else None
            if found is None or found[0] != seq:
                return False
            link, seq = found[1], seq - 1
        return seq == first - 1 and link == (prev.hash if prev else None)


def verify(session: Session, batch: int = 2000) -> Iterator[Break]:
    """Recompute every chain; yield each break found (altered, missing or reordered events).

    A gap is not a break when the events missing from it were erased by a rights request and their audited
    places link the events on either side (consent kept as proof around erased records).
    """
    tombstones = _Tombstones(session)
    for chain in _chains(session, batch):
        prev: ConsentEvent | None = None
        for event in chain:
            expected_seq = prev.seq + 1 if prev else 1
            expected_link = prev.hash if prev else None
            intact = event.seq == expected_seq and event.prev_hash == expected_link
            if event.hash != content_hash(event):
                yield Break(event.id, event.subject, "content does not match its hash (altered)")
            elif not intact and event.seq > expected_seq and tombstones.bridges(event, prev):
                pass  # erased events, audited with their places, fill the gap
            elif event.seq != expected_seq:
                yield Break(event.id, event.subject, f"sequence {event.seq}, expected {expected_seq} "
                            "(an earlier event was removed)")
            elif event.prev_hash != expected_link:
                yield Break(event.id, event.subject, "previous-hash link broken (removed or reordered)")
            prev = event
        session.expunge_all()
    # The tail of a chain leaves no successor to notice its removal; the audit trail names every event.
    # A chain removed by a rights request is audited as erased, whole: that is not a break.
    erased = select(AuditEvent.resource_id).where(AuditEvent.resource_type == "consent_event",
                                                  AuditEvent.action == "consent.erased")
    missing = (
        select(AuditEvent.resource_id)
        .outerjoin(ConsentEvent, ConsentEvent.id == AuditEvent.resource_id)
        .where(AuditEvent.resource_type == "consent_event", ConsentEvent.id.is_(None),
               AuditEvent.resource_id.not_in(erased))
        .distinct()
    )
    for resource_id in session.scalars(missing):
        yield Break(resource_id, "?" * 12, "recorded in the audit trail but missing from the ledger (removed)")
