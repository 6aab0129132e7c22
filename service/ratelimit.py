"""Per-key rate limits on the API (Flask-Limiter, fixed window): counted per API key and scope, in Redis when
REDIS_URL (or RATELIMIT_REDIS_URL) is set, so every web process counts together, and in memory otherwise.

Configured in PRIVACY_CONFIG: `[ratelimit] enabled = true, default = "6000 per minute"` and
`[ratelimit.scopes] "consent:read" = "..."`. `require_scope` checks once the key is known; the consent status
fast path (beneath Flask) calls `hit` on the same storage and keys, so both paths spend one count (the fast path
leases counts from the store in small batches: `ApiLimits._leased`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage

from service.config import ConfigError
from service.tenancy import SCOPES

log = logging.getLogger(__name__)

PREFIX = "privacy-api"  # the limiter's key prefix: a key's count is PREFIX/<key id>/<scope>/<limit>
DEFAULT = "6000 per minute"
# How long the fast path leaves an unreachable store alone before trying it again.
RETRY_STORE_SECONDS = 5.0
# A store that does not answer within this is treated as down: the API never waits on its limiter.
STORE_TIMEOUT_SECONDS = 0.25
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")


@dataclass(frozen=True)
class Config:
    enabled: bool
    default: RateLimitItem
    scopes: Mapping[str, RateLimitItem]

    def item(self, scope: str) -> RateLimitItem:
        return self.scopes.get(scope, self.default)


def _item(where: str, value: Any) -> RateLimitItem:
    try:
        items = parse_many(value) if isinstance(value, str) else []
    except ValueError:
        items = []
    if len(items) != 1:
        raise ConfigError(f"PRIVACY_CONFIG [ratelimit]{where}: expected one limit such as \"600 per minute\", "
                          f"got {value!r}")
    return items[0]


def load(toml: Mapping[str, Any]) -> Config:
    """The limits from PRIVACY_CONFIG's `[ratelimit]` table; on, at DEFAULT per key and scope, when absent."""
    section = toml.get("ratelimit", {})
    if not isinstance(section, dict) or set(section) - {"enabled", "default", "scopes"}:
        raise ConfigError("PRIVACY_CONFIG [ratelimit]: expected only `enabled`, `default` and [ratelimit.scopes]")
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError("PRIVACY_CONFIG [ratelimit].enabled: expected true or false")
    scopes = section.get("scopes", {})
    if not isinstance(scopes, dict):
        raise ConfigError("PRIVACY_CONFIG [ratelimit.scopes]: expected a table of scope = \"limit\"")
    unknown = set(scopes) - SCOPES
    if unknown:
        raise ConfigError(f"PRIVACY_CONFIG [ratelimit.scopes]: unknown scope(s) {sorted(unknown)}; "
                          f"choose from {sorted(SCOPES)}")
    return Config(enabled=enabled, default=_item(".default", section.get("default", DEFAULT)),
                  scopes=MappingProxyType({s: _item(f".scopes.{s!r}", v) for s, v in scopes.items()}))


def storage_url(env: Mapping[str, str], redis_url: str | None) -> str:
    url = env.get("RATELIMIT_REDIS_URL") or redis_url
    if url and urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"RATELIMIT_REDIS_URL: expected a redis://, rediss:// or unix:// URL, got {url!r}")
    if url and url.startswith("unix://"):
        url = "redis+unix://" + url[len("unix://"):]  # redis-py's unix socket URL, in the limits library's spelling
    return url or "memory://"


def lease_size(amount: int) -> int:
    """Counts the fast path takes from the store at once: 1% of the limit (at most 100), so a busy key costs one
    round trip (or, in memory, one increment) per that many requests; 1 (every request counted in the store) for
    limits under 200."""
    return max(1, min(100, amount // 100))


@dataclass
class _Lease:
    left: int  # counts taken from the store and not spent yet by this process
    count: int  # the store's count when they were taken
    reset_at: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds

    def headers(self, now: float) -> list[tuple[str, str]]:
        """The headers Flask-Limiter sends on the Flask path (names and values alike)."""
        return list(zip(HEADERS, (str(self.limit), str(self.remaining), str(int(self.reset_at)),
                                  str(int(self.reset_at - now))), strict=True))


class ApiLimits:
    """One per app: the Flask-Limiter instance and the fast path's direct access to its storage."""

    def __init__(self, app: Flask, config: Config, url: str) -> None:
        self.config = config
        redis = not url.startswith("memory://")
        self.limiter = Limiter(
            _no_key, storage_uri=url, strategy="fixed-window", key_prefix=PREFIX, headers_enabled=True,
            # Not the endpoint: the one limit is checked by `check`, once the key is known, and must not be tied
            # to the endpoint (Flask-Limiter would then also evaluate it before the view, with no key yet).
            request_identifier=lambda: PREFIX,
            storage_options={"socket_timeout": STORE_TIMEOUT_SECONDS,
                             "socket_connect_timeout": STORE_TIMEOUT_SECONDS} if redis else {},
            # Fail open on a store outage: limits protect the service from a runaway client, and an outage of
            # their store must not become an outage of the API (every product app checks consent at start).
            # Flask-Limiter then counts in this process's memory, logs the switch once (not per request) and
            # returns to the store once it answers again.
            swallow_errors=True, in_memory_fallback_enabled=True)
        self.limiter.init_app(app)
        # Shared: counted per key and scope whatever the endpoint (Flask-Limiter's bucket is then the scope alone,
        # which is the key `hit` writes).
        self._guard = self.limiter.shared_limit(
            lambda: str(self.config.item(g.rate_scope)), lambda _endpoint: g.rate_scope,
            key_func=lambda: g.principal.key_id, error_message=self._message)(_allowed)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        self._names: dict[tuple[str, str], tuple[RateLimitItem, str]] = {}

    @staticmethod
    def _message() -> str:
        return f"rate limit reached for this API key and scope {g.rate_scope!r}; retry after Retry-After seconds"

    def check(self, scope: str) -> None:
        """Count this request against the caller's key (g.principal) and `scope`; raises 429 past the limit."""
        g.rate_scope = scope
        self._guard()

    def hit(self, key_id: str, scope: str) -> Decision | None:
        """Count one request outside Flask (the fast path), on the same counter as `check`. None: the store is
        unreachable, and the request goes unlimited (fail open, as `check`; logged once per outage)."""
        now = time.time()
        if self._down_until > now:
            return None
        named = self._names.get((key_id, scope))
        if named is None:  # the limit and its counter's name, once per key and scope (a tenth of the cost)
            if len(self._names) >= 10_000:
                self._names.clear()
            item = self.config.item(scope)
            named = self._names[(key_id, scope)] = (item, item.key_for(PREFIX, key_id, scope))
        item, key = named
        try:
            decision = self._leased(self.limiter.storage, item, key, now)
        except Exception as exc:  # noqa: BLE001 - any failure of the store: fail open (see ApiLimits)
            with self._lock:
                if self._down_until == 0.0:
                    log.warning("rate-limit store unreachable (%s): API requests go unlimited meanwhile",
                                type(exc).__name__)
                self._down_until = now + RETRY_STORE_SECONDS
            return None
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            log.info("rate-limit store reachable again")
        return decision

    def _leased(self, storage: Any, item: RateLimitItem, key: str, now: float) -> Decision:
        """A count from this process's lease on the store's counter, taking a new lease when it is spent.

        A round trip per request halved the status path's throughput against Redis; taking `lease_size` counts at
        once (INCRBY n) makes it one per n requests. In memory, limits' storage starts a timer thread at most
        increments (its expiry sweep), which cost the fast paths a thread start every few requests: leased there
        too. Only counts the store granted within the limit are spent, so a key never gets more than its limit;
        the cost is that counts leased by one process and not used by the window's end are refused to the others
        (at most n - 1 per process and window)."""
        size = lease_size(item.amount)
        with self._lock:
            lease = self._leases.get(key)
            if lease is not None and lease.left > 0 and lease.reset_at > now:
                lease.left -= 1
                return Decision(True, item.amount, max(0, item.amount - lease.count) + lease.left, lease.reset_at)
        if isinstance(storage, RedisStorage):
            # One round trip: what limits' fixed window does (INCRBY, EXPIRE on the first hit) plus the TTL for
            # the headers, which Flask-Limiter reads in two more.
            name = storage.prefixed_key(key)
            pipe = storage.get_connection().pipeline(transaction=False)
            pipe.incrby(name, size).expire(name, item.get_expiry(), nx=True).ttl(name)
            count, _, ttl = pipe.execute()
            reset_at = now + max(ttl, 0)
        else:
            count, reset_at = storage.incr(key, item.get_expiry(), amount=size), storage.get_expiry(key)
        granted = min(size, max(0, item.amount - (count - size)))  # the part of this lease within the limit
        if granted == 0:
            return Decision(False, item.amount, 0, reset_at)
        with self._lock:
            if len(self._leases) >= 10_000:
                self._leases.clear()
            self._leases[key] = _Lease(granted - 1, count, reset_at)
        return Decision(True, item.amount, max(0, item.amount - count) + granted - 1, reset_at)

    def reset(self) -> None:
        """Forget every count (tests share one app across tests)."""
        self.limiter.reset()
        self._leases.clear()


def _no_key() -> str:
    return ""  # never used: the one limit given names its own key function


def _allowed() -> None:
    return None


def install(app: Flask) -> None:
    """Set up the API's limits (app.extensions["api_limits"]), unless `[ratelimit] enabled = false`."""
    settings = app.config["SETTINGS"]
    config = load(settings.toml)
    url = storage_url(settings.env, settings.redis_url)
    app.extensions["api_limits"] = ApiLimits(app, config, url) if config.enabled else None
