"""Idempotency keys for POSTs that create something: a retried submission (`Idempotency-Key` header) answers the
first result instead of creating a second resource.

Per app and key, the first request that creates a resource records the key in the transaction that saves the
resource (`claim`), so the key exists exactly when the resource does: a request that failed left nothing, and a
retry then does the work; two concurrent requests with one key cannot both commit (the loser answers the
winner's result). Once the first answer is made, its status and body are stored (encrypted: bodies may hold
personal data) and replayed, byte for byte, to every retry within `TTL`. A retry that finds the resource but no
stored answer (the first process died between its commit and its answer) is answered by the route's `replay`.
The same key with a different request (method, path, query or body) is refused with 422 naming the header.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

import flask_smorest
from flask import Response, current_app, g, request
from flask_smorest import abort
from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from service.auth import current_principal
from service.db import Base, BigIntPK, utcnow

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)  # how long a key is remembered; after that the same key is a new request
MAX_LENGTH = 255
REPLAYED = "Idempotent-Replayed"  # response header on an answer given again
# A retry meeting a first request that has saved its resource but not yet stored its answer waits this long for
# it, while the first request is this young; after that the answer is rebuilt from the resource.
ANSWER_WAIT_SECONDS = 5.0
ANSWERING = timedelta(seconds=30)

PARAMETER = {
    "in": "header", "name": HEADER, "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": "^[\\x21-\\x7e]+$"},
    "description": "Makes the POST safe to retry: the first request with this key (per app) does the work and "
                   "every retry within 24 hours answers its status and body (with `Idempotent-Replayed: true`) "
                   "and creates nothing. The same key with a different request is refused (422). Use a fresh "
                   "random value (a UUID) per intended submission.",
}


class IdempotencyKey(Base):
    """A key an app sent with a submission: what the request was (a digest), what it created, what it answered."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("app_id", "key_hash"), Index("ix_idempotency_keys_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"))
    key_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the key: clients choose keys, we keep digests
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path, query and body
    resource: Mapped[str | None] = mapped_column(String(100))  # the id of what the first request created
    status: Mapped[int | None]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # the first answer's JSON, sealed with the field keys
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


@dataclass
class _Pending:
    """The key of the request being served, until its resource is saved."""

    app_id: int
    key_hash: str
    fingerprint: str
    claimed: bool = False


def claim(session: Session, resource: str) -> None:
    """Record the current request's key in the caller's transaction, which saves `resource` (an id); a no-op
    without a key. Call it in the unit of work that creates the resource. A concurrent request that claimed the
    same key first makes this transaction fail on commit (IntegrityError), and `idempotent` answers its result."""
    pending: _Pending | None = g.get("idempotency")
    if pending is None:
        return
    session.add(IdempotencyKey(app_id=pending.app_id, key_hash=pending.key_hash, fingerprint=pending.fingerprint,
                               resource=resource, expires_at=utcnow() + TTL))
    session.flush()  # a concurrent claim of the same key waits here (PostgreSQL) or fails at once
    pending.claimed = True


def idempotent(replay: Callable[[str], tuple[Any, int]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make a POST view retry-safe with the Idempotency-Key header (documented in the OpenAPI).

    Place it under `@require_scope` and above `@blp.arguments`/`@blp.response`. The view calls `claim` in the
    transaction that creates its resource. `replay(resource)` gives (JSON-ready body, status) of that resource,
    for a retry that finds it without a stored answer.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = request.headers.get(HEADER)
            if key is None:
                return view(*args, **kwargs)
            pending = _pending(key)
            found = _lookup(pending)
            if found is not None:
                return _answer(found, pending, replay)
            g.idempotency = pending
            try:
                response = current_app.make_response(view(*args, **kwargs))
            except IntegrityError:
                found = _lookup(pending)
                if found is None:
                    raise
                return _answer(found, pending, replay)  # a concurrent request with this key won
            finally:
                g.pop("idempotency", None)
            if 200 <= response.status_code < 300:
                _store(pending, response)
            return response

        return flask_smorest.Blueprint.doc(parameters=[PARAMETER])(wrapper)

    return decorator


def purge_expired(db: Any) -> int:
    """Forget keys past their time; commits. Returns how many (run by the maintenance pass)."""
    with db.session() as session:
        return session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())).rowcount


# --- inside -------------------------------------------------------------------------------------------------

def _pending(key: str) -> _Pending:
    if not 1 <= len(key) <= MAX_LENGTH or not all("\x21" <= c <= "\x7e" for c in key):
        abort(422, message=f"invalid {HEADER} header",
              errors={"headers": {HEADER: [f"1 to {MAX_LENGTH} visible ASCII characters (e.g. a UUID)"]}})
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.query_string, request.get_data()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return _Pending(current_principal().app_id, hashlib.sha256(key.encode()).hexdigest(), digest.hexdigest())


def _db() -> Any:
    return current_app.extensions["db"]


def _label(pending: _Pending) -> str:
    return f"idempotency:{pending.app_id}:{pending.key_hash}"


def _lookup(pending: _Pending) -> IdempotencyKey | None:
    mine = (IdempotencyKey.app_id == pending.app_id) & (IdempotencyKey.key_hash == pending.key_hash)
    with _db().sessions() as session:
        found = session.scalar(select(IdempotencyKey).where(mine))
    if found is not None and found.expires_at <= utcnow():
        with _db().session() as session:  # remembered long enough: the key is free again
            session.execute(delete(IdempotencyKey).where(mine, IdempotencyKey.id == found.id))
        return None
    return found


def _answer(found: IdempotencyKey, pending: _Pending, replay: Callable[[str], tuple[Any, int]]) -> Response:
    if found.fingerprint != pending.fingerprint:
        abort(422, message=f"this {HEADER} was used with a different request: use a new key for a new request",
              errors={"headers": {HEADER: ["already used with another method, path or body"]}})
    if found.status is None and utcnow() - found.created_at < ANSWERING:
        found = _await_answer(pending, found)  # the first request has saved its resource and is answering now
    if found.status is not None and found.body is not None:
        body = current_app.extensions["keys"].fields.decrypt(found.body, _label(pending))
        status = found.status
    else:
        # Saved, but no answer stored: the first process died after its commit (or is slow to answer). Answer
        # from the resource as it is now; nothing is stored, so the first answer wins if it comes.
        assert found.resource is not None
        content, status = replay(found.resource)
        body = current_app.json.dumps(content).encode() + b"\n"
    response = Response(body, status, mimetype="application/json")
    response.headers[REPLAYED] = "true"
    return response


def _await_answer(pending: _Pending, found: IdempotencyKey) -> IdempotencyKey:
    deadline = time.monotonic() + ANSWER_WAIT_SECONDS
    while found.status is None and time.monotonic() < deadline:
        time.sleep(0.05)
        found = _lookup(pending) or found
    return found


def _store(pending: _Pending, response: Response) -> None:
    """Keep the first answer: on the row the view claimed, or on a new row when the view created nothing (it
    answered an existing resource). A failure here costs the retry its exact replay, never the resource."""
    body = current_app.extensions["keys"].fields.encrypt(response.get_data(), _label(pending))
    mine = ((IdempotencyKey.app_id == pending.app_id) & (IdempotencyKey.key_hash == pending.key_hash)
            & (IdempotencyKey.fingerprint == pending.fingerprint) & IdempotencyKey.status.is_(None))
    try:
        with _db().session() as session:
            stored = session.execute(update(IdempotencyKey).where(mine).values(status=response.status_code,
                                                                             body=body)).rowcount
            if not stored and not pending.claimed:
                session.add(IdempotencyKey(app_id=pending.app_id, key_hash=pending.key_hash,
                                           fingerprint=pending.fingerprint, status=response.status_code,
                                           body=body, expires_at=utcnow() + TTL))
    except IntegrityError:
        pass  # a concurrent request stored its answer first: retries get that one
    except Exception as exc:  # noqa: BLE001 - the work is saved; only the exact replay is lost
        log.warning("idempotency: the answer could not be stored (%s)", type(exc).__name__)

