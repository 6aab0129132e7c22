"""Keyed pseudonyms for subject identifiers: stable for lookups, meaningless without the key."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def subject(self, app_id: int, subject_id: str) -> str:
        # The app id is mixed in so one person's pseudonyms in two products cannot be linked.
        message = f"{app_id}\x00{subject_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def derive(self, label: str) -> bytes:
        """A secret for one purpose (e.g. signing cookies), derived from the key and `label`."""
        return hmac.new(self._key, b"derive\x00" + label.encode(), hashlib.sha256).digest()
