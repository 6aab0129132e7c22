"""Ledger checkpoints: digests of every event's stored place in its chain (id, seq, previous hash, hash), signed,
so a later check can prove that nothing before it was removed, inserted or re-hashed without re-reading content."""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from consent.models import ConsentEvent
from service.audit import AuditEvent
from service.crypto.signing import Signer

# Events made this long before a check began are covered by its checkpoint; later ones are left to the next
# check. An id is made just before its insert, so only a write that took longer than this to commit, or a writer
# whose clock lags by as much, could land below a horizon already taken (it would then show as a change).
LAG = timedelta(minutes=10)
# Events per digest: a change before a checkpoint is located to its segment (its chains are then re-read).
SEGMENT = 65536
VERSION = 1

_EVENTS = ConsentEvent.__table__
_EMPTY = hashlib.sha256().hexdigest()


@dataclass(frozen=True)
class Segment:
    first: str  # the first event id it covers; it runs to the next segment's first id, the last to the horizon
    count: int
    digest: str


@dataclass(frozen=True)
class Checkpoint:
    """What an intact check vouched for: every event whose id sorts before `horizon`, by stored place.

    `content_verified_at` is when the content behind it was last recomputed in full: an incremental check
    carries its base's time forward, a full check sets its own.
    """

    horizon: str
    events: int
    segments: tuple[Segment, ...]
    content_verified_at: str
    verification: int | None = None

    def claims(self, issuer: str) -> dict[str, Any]:
        return {"ledgerCheckpoint": VERSION, "iss": issuer, "verification": self.verification,
                "horizon": self.horizon, "horizonTime": id_time(self.horizon).isoformat(), "events": self.events,
                "contentVerifiedAt": self.content_verified_at,
                "segments": [[s.first, s.count, s.digest] for s in self.segments]}


def sign(checkpoint: Checkpoint, signer: Signer, issuer: str) -> str:
    """The checkpoint as a compact JWS (EdDSA, the receipts' key ring): verifiable with the service's JWKS."""
    if checkpoint.verification is None:
        raise ValueError("a checkpoint is signed for the verification that recorded it")
    return signer.sign(checkpoint.claims(issuer), typ="ledger-checkpoint+jwt")


def load(token: str, signer: Signer, verification: int) -> Checkpoint:
    """The checkpoint in `token` if our key signed it for `verification`; ValueError otherwise."""
    claims = signer.verify(token)
    if claims.get("ledgerCheckpoint") != VERSION or claims.get("verification") != verification:
        raise ValueError("not the checkpoint of this verification")
    return Checkpoint(horizon=claims["horizon"], events=claims["events"],
                      segments=tuple(Segment(*s) for s in claims["segments"]),
                      content_verified_at=claims["contentVerifiedAt"], verification=verification)


def horizon_at(moment: datetime) -> str:
    """The lowest event id made at `moment` (UUIDv7 order is time order)."""
    return str(uuid.UUID(int=int(moment.timestamp() * 1000) << 80))


def id_time(event_id: str) -> datetime:
    """When a UUIDv7 event id was made, to the millisecond."""
    return datetime.fromtimestamp(int(event_id[:8] + event_id[9:13], 16) / 1000, UTC)


def _place(event_id: str, seq: Any, prev_hash: Any, digest: Any) -> bytes:
    return f"{event_id}\x1f{seq}\x1f{prev_hash or ''}\x1f{digest}\n".encode()


def _elements(conn: Connection, batch: int) -> Iterator[tuple[str, bytes, str | None]]:
    """(id, place, subject) of every event in id order: the ledger's rows, and the places of erased events
    from their `consent.erased` audit entries (no subject), so an erasure leaves the digests as they were."""
    rows = conn.execute(select(_EVENTS.c.id, _EVENTS.c.seq, _EVENTS.c.prev_hash, _EVENTS.c.hash, _EVENTS.c.subject)
                        .order_by(_EVENTS.c.id).execution_options(yield_per=batch))
    erased = conn.execute(select(AuditEvent.resource_id, AuditEvent.details)
                          .where(AuditEvent.resource_type == "consent_event", AuditEvent.action == "consent.erased")
                          .order_by(AuditEvent.resource_id).execution_options(yield_per=batch))
    live = ((r[0], _place(r[0], r[1], r[2], r[3]), r[4]) for r in rows)
    gone = ((r[0], _place(r[0], *_details(r[1])), None) for r in erased)
    return heapq.merge(live, gone, key=lambda e: e[0])


def _details(details: Any) -> tuple[Any, Any, Any]:
    if not isinstance(details, dict):
        return None, None, None
    return details.get("seq"), details.get("prev_hash"), details.get("hash")


class _Fold:
    """One segment's running digest."""

    __slots__ = ("count", "first", "sha")

    def __init__(self, first: str) -> None:
        self.first, self.count, self.sha = first, 0, hashlib.sha256()

    def add(self, place: bytes) -> None:
        self.count += 1
        self.sha.update(place)

    def segment(self) -> Segment:
        return Segment(self.first, self.count, self.sha.hexdigest())


@dataclass
class Digest:
    """The result of one pass over the stored places: the new checkpoint's segments, and against `since` the
    segments that differ (as (name, problem) pairs and as id ranges) and the chains that changed after it."""

    horizon: str
    since_horizon: str | None
    segments: list[Segment] = field(default_factory=list)
    events: int = 0
    mismatches: list[tuple[str, str]] = field(default_factory=list)
    changed_ranges: list[tuple[str | None, str | None]] = field(default_factory=list)
    changed_subjects: set[str] = field(default_factory=set)

    def checkpoint(self, content_verified_at: str) -> Checkpoint:
        return Checkpoint(horizon=self.horizon, events=self.events, segments=tuple(self.segments),
                          content_verified_at=content_verified_at)


def digest(conn: Connection, *, batch: int, horizon: str, segment: int, since: Checkpoint | None,
           changed_chains: bool) -> Digest:
    """Fold every stored place below `horizon` into segments of `segment` events, and compare those below
    `since.horizon` with `since`'s segments. With `changed_chains`, collect the subjects whose chains gained
    events after `since` or lie in a segment that differs (memory grows with the change, not the ledger)."""
    result = Digest(horizon=horizon, since_horizon=since.horizon if since else None)
    old = list(since.segments) if since and since.segments else [Segment("", 0, _EMPTY)]
    at, folding, subjects = 0, _Fold(old[0].first), set[str]()
    current: _Fold | None = None
    last = ""

    def close(index: int, fold: _Fold) -> None:
        expected = old[index]
        if (fold.count, fold.sha.hexdigest()) == (expected.count, expected.digest):
            subjects.clear()
            return
        low = old[index].first if index else None
        high = old[index + 1].first if index + 1 < len(old) else since.horizon if since else None
        result.changed_ranges.append((low, high))
        result.changed_subjects.update(subjects)
        subjects.clear()
        result.mismatches.append((
            f"events {low or '(start)'} to {high}",
            f"the stored places of the {expected.count} events made between {_time(low)} and {_time(high)}, "
            f"signed by the checkpoint of verification {since.verification if since else '?'}, changed "
            f"({fold.count} now): events removed, inserted or their hashes rewritten"))

    for event_id, place, subject in _elements(conn, batch):
        if event_id < last:
            result.mismatches.append((event_id, "event id out of order: not an id the service makes"))
        last = event_id
        if event_id < horizon:
            if current is None or current.count >= segment:
                if current is not None:
                    result.segments.append(current.segment())
                current = _Fold(event_id)
            current.add(place)
            result.events += 1
        if since is None:
            continue
        if event_id >= since.horizon:
            if changed_chains and subject is not None:
                result.changed_subjects.add(subject)
            continue
        while at + 1 < len(old) and event_id >= old[at + 1].first:
            close(at, folding)
            at += 1
            folding = _Fold(old[at].first)
        folding.add(place)
        if changed_chains and subject is not None:
            subjects.add(subject)
    if current is not None:
        result.segments.append(current.segment())
    if since is not None:
        close(at, folding)
        for index in range(at + 1, len(old)):
            close(index, _Fold(old[index].first))
    return result


def _time(event_id: str | None) -> str:
    return "the start" if not event_id else id_time(event_id).isoformat(timespec="seconds")
