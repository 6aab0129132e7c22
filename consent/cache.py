"""The per-process cache of policy views that the consent paths read policy metadata from."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from consent.policies import get_policy
from consent.views import PolicyView


class PolicyCache:
    """Per-process cache of policy views with a short TTL; writes in this process invalidate at once.

    `sessions` opens a session on a miss when the caller has none: the hot paths then create no session at all.
    """

    def __init__(self, ttl: float, sessions: Callable[[], Session] | None = None) -> None:
        self.ttl = ttl
        self.sessions = sessions
        self._entries: dict[tuple[int, str], tuple[float, PolicyView]] = {}

    def get(self, session: Session | None, app_id: int, key: str) -> PolicyView:
        hit = self._entries.get((app_id, key))
        if hit and hit[0] > time.monotonic():
            return hit[1]
        if session is None:
            if self.sessions is None:
                raise TypeError("PolicyCache.get needs a session or a session factory")
            with self.sessions() as own:
                return self.get(own, app_id, key)
        view = PolicyView.of(get_policy(session, app_id, key))
        if self.ttl > 0:
            self._entries[(app_id, key)] = (time.monotonic() + self.ttl, view)
        return view

    def invalidate(self, app_id: int, key: str) -> None:
        self._entries.pop((app_id, key), None)

    def clear(self) -> None:
        self._entries.clear()
