"""The audit evidence pack's shared parts: the section type domains register, a zip written file by file with each
file's SHA-256 taken as it streams, the JWS-signed manifest, and its verification. Never imports a domain."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

MANIFEST = "manifest.jws"
MANIFEST_TYPE = "evidence-pack-manifest"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Period:
    """The pack's period, [start, end), timezone-aware UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Context:
    """What a section writer gets besides its Session: the runtime, the store registry and the period."""

    rt: Any
    stores: Any
    period: Period

    def pseudonym(self, person: str | None) -> str | None:
        """A staff member's or a processor contact's name as a keyed pseudonym (the pack holds no personal data)."""
        return None if person is None else "p:" + self.rt.keys.pseudonyms.subject(0, f"evidence\x00{person}")[:16]


@dataclass(frozen=True)
class EvidenceSection:
    """One domain's part of the pack: `write(session, ctx, pack)` adds its files and returns a summary (counts, no
    personal data). `clauses` are ISO/IEC 27701:2019 clause numbers (titles in governance/clauses_27701.json)."""

    name: str
    clauses: tuple[str, ...]
    write: Callable[[Session, Context, PackWriter], dict[str, Any]]


# Keys whose values name people (staff, contacts): replaced by pseudonyms wherever a section's rows hold them.
PEOPLE = frozenset({"approver", "reviewer", "owner", "contact", "email", "requestedBy", "requested_by",
                    "createdBy", "created_by", "releasedBy", "released_by", "actor", "by", "approvedBy",
                    "approved_by", "reviewed_by", "reviewedBy", "verified_by", "lifted_by", "erasureEmail",
                    "erasure_email", "name_of_contact"})


def scrub(ctx: Context, value: Any) -> Any:
    """`value` with every PEOPLE key's string replaced by its pseudonym, recursively."""
    if isinstance(value, dict):
        return {k: (ctx.pseudonym(v) if k in PEOPLE and isinstance(v, str) else scrub(ctx, v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(ctx, v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default, ensure_ascii=False)


class PackWriter:
    """Writes files into an open zip as they are produced (nothing held in memory) and keeps their digests."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.digests: dict[str, str] = {}

    def lines(self, name: str, rows: Iterable[Any]) -> int:
        """Write `rows` as JSON Lines, one at a time; return how many."""
        digest, count = hashlib.sha256(), 0
        with self.zf.open(name, "w", force_zip64=True) as fh:
            for row in rows:
                data = (dumps(row) + "\n").encode()
                digest.update(data)
                fh.write(data)
                count += 1
        self.digests[name] = digest.hexdigest()
        return count

    def document(self, name: str, value: Any) -> None:
        """Write one JSON document (small things: summaries, snapshots)."""
        data = (json.dumps(value, sort_keys=True, default=_json_default, ensure_ascii=False, indent=1) + "\n").encode()
        with self.zf.open(name, "w") as fh:
            fh.write(data)
        self.digests[name] = hashlib.sha256(data).hexdigest()

    def text(self, name: str, text: str) -> None:
        data = text.encode()
        with self.zf.open(name, "w") as fh:
            fh.write(data)
        self.digests[name] = hashlib.sha256(data).hexdigest()


def export(session: Session, ctx: Context, sections: Iterable[EvidenceSection], out: str,
           clauses: dict[str, str] | None = None) -> dict[str, Any]:
    """Write the pack to `out`: each section's files, index.json (sections, summaries, clause references) and the
    signed manifest. Returns the index."""
    rt, period = ctx.rt, ctx.period
    index: dict[str, Any] = {"period": {"from": period.start, "to": period.end}, "sections": []}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        pack = PackWriter(zf)
        for section in sections:
            before = set(pack.digests)
            summary = section.write(session, ctx, pack)
            index["sections"].append({
                "name": section.name, "summary": summary, "files": sorted(set(pack.digests) - before),
                "clauses": [{"clause": c, "title": (clauses or {}).get(c)} for c in section.clauses]})
        pack.document("index.json", index)
        claims = {"iss": rt.settings.issuer, "type": MANIFEST_TYPE,
                  "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
                  "files": dict(sorted(pack.digests.items()))}
        pack.zf.writestr(MANIFEST, rt.keys.signer.sign(claims, typ="JWT"))
    return index


class Mismatch(Exception):
    """The pack does not verify; the message names the first file (or the manifest) that is wrong."""


def verify(path: str, signer: Any) -> dict[str, Any]:
    """Check the manifest's signature and every file's SHA-256; raise Mismatch naming the first problem."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise Mismatch(f"{path}: not a zip file ({exc})") from exc
    with zf:
        names = [i.filename for i in zf.infolist()]
        if MANIFEST not in names:
            raise Mismatch(f"{MANIFEST}: missing")
        try:
            claims = signer.verify(zf.read(MANIFEST).decode("ascii"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise Mismatch(f"{MANIFEST}: signature does not verify") from exc
        if claims.get("type") != MANIFEST_TYPE:
            raise Mismatch(f"{MANIFEST}: not an evidence pack manifest")
        files: dict[str, str] = claims["files"]
        for name in names:
            if name != MANIFEST and name not in files:
                raise Mismatch(f"{name}: not in the manifest")
        for name, expected in files.items():
            if name not in names:
                raise Mismatch(f"{name}: listed in the manifest but missing")
            digest = hashlib.sha256()
            try:
                with zf.open(name) as fh:
                    while chunk := fh.read(CHUNK):
                        digest.update(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:  # a flipped byte: a CRC or inflate error
                raise Mismatch(f"{name}: unreadable ({exc})") from exc
            if digest.hexdigest() != expected:
                raise Mismatch(f"{name}: SHA-256 does not match the manifest")
        return claims


BATCH = 1000


def keyset(session: Session, stmt: Any, key: Any, batch: int = BATCH) -> Iterable[Any]:
    """Rows of `stmt` in batches ordered by the unique column `key` (keyset pagination: no offset, no cursor held
    open across the writer's work, constant memory)."""
    last = None
    while True:
        page = stmt.order_by(key).limit(batch)
        if last is not None:
            page = page.where(key > last)
        rows = session.execute(page).all()
        if not rows:
            return
        yield from rows
        last = getattr(rows[-1], key.key)
        session.expunge_all()


def write_keys(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    """API key history (created, revoked, from the keys and the audit trail) and signing-key rotations."""
    from sqlalchemy import or_, select

    from service.audit import AuditEvent
    from service.tenancy import ApiKey

    p = ctx.period
    keys = select(ApiKey.id, ApiKey.key_id, ApiKey.app_id, ApiKey.scopes, ApiKey.created_at, ApiKey.revoked_at)
    n_keys = pack.lines("keys/api_keys.jsonl", (
        {"keyId": r.key_id, "app": r.app_id, "scopes": r.scopes.split(), "createdAt": r.created_at,
         "revokedAt": r.revoked_at, "activeAtEnd": r.created_at < p.end and (r.revoked_at is None
                                                                             or r.revoked_at >= p.end)}
        for r in keyset(session, keys.where(ApiKey.created_at < p.end), ApiKey.id)))
    events = (select(AuditEvent.id, AuditEvent.at, AuditEvent.app_id, AuditEvent.action, AuditEvent.resource_type,
                     AuditEvent.resource_id, AuditEvent.details)
              .where(AuditEvent.at >= p.start, AuditEvent.at < p.end,
                     or_(AuditEvent.resource_type == "api_key", AuditEvent.action.like("key.%"))))
    counts: dict[str, int] = {}

    def history() -> Iterable[dict[str, Any]]:
        for r in keyset(session, events, AuditEvent.id):
            counts[r.action] = counts.get(r.action, 0) + 1
            yield {"at": r.at, "app": r.app_id, "action": r.action, "resource": r.resource_type,
                   "id": r.resource_id, "details": scrub(ctx, r.details or {})}

    n_events = pack.lines("keys/history.jsonl", history())
    signer = ctx.rt.keys.signer
    pack.document("keys/signing_keys.json", {"active": signer.active_kid, "jwks": signer.jwks()})
    return {"apiKeys": n_keys, "events": n_events, "byAction": counts,
            "signingRotations": counts.get("key.signing_rotated", 0), "signingKeys": len(signer.jwks()["keys"])}


KEYS_SECTION = EvidenceSection("keys", ("6.6.2", "6.6.4", "6.7.1", "6.9.4"), write_keys)
