"""Bearer-key authentication and scope checks for every API endpoint."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy.exc import SQLAlchemyError

from service.db import Database, utcnow
from service.revocations import Revocations
from service.tenancy import PLATFORM_SCOPES, Principal, authenticate, touch_keys

F = TypeVar("F", bound=Callable[..., Any])
_CACHE_LIMIT = 10_000
log = logging.getLogger(__name__)


class KeyCache:
    """A short-lived in-process cache of verified keys, so the hot path skips the key lookup.

    Each entry carries the revocation generation it was looked up in (service.revocations): once any key is
    revoked, the generation changes and no earlier entry is served, in every process, without a round trip per
    request. Entries also expire after CACHE_TTL_SECONDS (0 disables the cache). They are keyed by a digest of the
    key, never the key itself.
    """

    def __init__(self, ttl: float, revocations: Revocations | None = None) -> None:
        self.ttl = ttl
        self.revocations = revocations
        self._entries: dict[bytes, tuple[float, int, Principal]] = {}
        self._seen: int | None = None

    def generation(self) -> int | None:
        """The revocation generation now (None: revocations cannot be followed, so nothing is cached). Take it
        before looking a key up, and give it to `put`: a revocation in between voids that lookup."""
        if self.revocations is None:
            return 0
        generation = self.revocations.generation()
        if generation != self._seen:
            self._seen = generation
            self._entries.clear()  # only to free them: an entry of another generation is never served
        return generation

    def get(self, secret: str) -> Principal | None:
        hit = self._entries.get(_digest(secret))
        if hit is None or hit[0] < time.monotonic() or hit[2].expired(time.time()):
            return None
        generation = self.generation()
        if generation is None or hit[1] != generation:
            return None
        return hit[2]

    def put(self, secret: str, principal: Principal, generation: int | None) -> None:
        if self.ttl <= 0 or generation is None or generation != self.generation():
            return
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[_digest(secret)] = (time.monotonic() + self.ttl, generation, principal)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, authorization: str) -> Principal | None:
        """The cached principal for an `Authorization` header value; None when absent, malformed or not cached."""
        secret = bearer_secret(authorization)
        return None if secret is None else self.get(secret)


class KeyUsage:
    """Each key's last use, written to `api_keys.last_used_at` at most once a minute per key by this process
    (and skipped when another process wrote it in that minute): not a write per call."""

    def __init__(self, db: Database, every: float = 60.0) -> None:
        self.db, self.every = db, every
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, principal: Principal) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._written.get(principal.key_id)
            if last is not None and now - last < self.every:
                return
            if len(self._written) >= _CACHE_LIMIT:
                self._written.clear()
            self._written[principal.key_id] = now
        try:
            with self.db.session() as session:
                touch_keys(session, [principal.key_id], utcnow())
        except SQLAlchemyError as exc:  # the caller's own work decides whether the request fails, not this
            log.warning("key usage not recorded: %s", type(exc).__name__)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def bearer_secret(authorization: str) -> str | None:
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def _unauthorized(message: str) -> None:
    abort(401, message=message, headers={"WWW-Authenticate": 'Bearer realm="privacy-service"'})


def current_principal() -> Principal:
    """The authenticated caller; only valid inside a view guarded by `require_scope`."""
    return g.principal


def _authenticate_request() -> Principal:
    secret = bearer_secret(request.headers.get("Authorization", ""))
    if secret is None:
        _unauthorized("missing bearer API key in the Authorization header")
    cache: KeyCache = current_app.extensions["key_cache"]
    principal = cache.get(secret)
    if principal is None:
        generation = cache.generation()
        with current_app.extensions["db"].sessions() as session:
            principal = authenticate(session, secret)
        if principal is None:
            _unauthorized("invalid, expired or revoked API key")
        cache.put(secret, principal, generation)
    current_app.extensions["key_usage"].seen(principal)
    return principal


def require_scope(scope: str, *alternatives: str) -> Callable[[F], F]:
    """Guard a view: 401 without a valid key, 403 without `scope` or one of `alternatives` (or `admin`, when
    they are app scopes)."""
    accepted = (scope, *alternatives)
    lacks = (f"this API key lacks the {scope!r} scope" if not alternatives else
             f"this API key lacks every one of the scopes {list(accepted)}")
    if scope in PLATFORM_SCOPES:
        lacks += " (a company-wide scope, which an app's admin does not imply)"

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = _authenticate_request()
            if not any(principal.has(s) for s in accepted):
                abort(403, message=lacks)
            g.principal = principal
            limits = current_app.extensions.get("api_limits")
            if limits is not None:  # counted once the key is known: per key and scope, never per address
                limits.check(scope)
            return func(*args, **kwargs)

        wrapper.required_scope = scope  # type: ignore[attr-defined]
        doc = getattr(wrapper, "_apidoc", {})
        manual = dict(doc.get("manual_doc", {}))
        manual["security"] = [{"bearerAuth": [s]} for s in accepted]  # alternatives: any one suffices
        wrapper._apidoc = {**doc, "manual_doc": manual}  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator

