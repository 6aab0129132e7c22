"""Digests of destroyed record keys: an order-independent sum of keyed hashes, so batches combine and a batch
found not destroyed after all can be taken out again.

digest(keys) = sum(HMAC-SHA256(k, store 0x1f category 0x1f key) as a 256-bit integer) mod 2**256, in hex.
The key `k` is derived from the service's pseudonym key: record keys (file paths, Redis keys) can name people,
so the certificate commits to them without disclosing them. `flask retention digest` recomputes it from a list.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

MODULUS = 1 << 256
ALGORITHM = "sum mod 2^256 of HMAC-SHA256(service key, store 0x1f category 0x1f record key)"


def digest_key(keys: Any) -> bytes:
    """The HMAC key, in its own domain of the pseudonym key (app id 0 is no app)."""
    return bytes.fromhex(keys.pseudonyms.subject(0, "retention:record-keys"))


def key_sum(secret: bytes, store: str, category: str, record_keys: Iterable[str]) -> int:
    prefix = f"{store}\x1f{category}\x1f".encode()
    total = 0
    for key in record_keys:
        mac = hmac.new(secret, prefix + key.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
        total += int.from_bytes(mac, "big")
    return total % MODULUS


def to_hex(value: int) -> str:
    return f"{value % MODULUS:064x}"


def from_hex(text: str | None) -> int:
    return int(text, 16) if text else 0


def combine(digests: Iterable[str | None]) -> str:
    return to_hex(sum(from_hex(d) for d in digests))
