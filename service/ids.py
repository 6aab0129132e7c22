"""Time-ordered row identifiers (UUIDv7, RFC 9562) for the tables written at a high rate."""

from __future__ import annotations

import os
import time
import uuid

_MS = (1 << 48) - 1
_RAND_B = (1 << 62) - 1


def uuid7() -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, 12 bits of sub-millisecond time (RFC 9562 §6.2, method 3), 62
    random bits.

    Ids made one after another sort in the order they were made, so a B-tree keyed on them grows at its right
    edge: a random (version 4) key touches a random leaf per insert, which misses the buffer cache on a large
    table and, the first time after each checkpoint, writes the whole page to the WAL. Nothing relies on the
    order for correctness (a consent chain is ordered by its `seq`). An id shows its creation time to the
    millisecond, which every record carrying one states anyway.
    """
    ms, sub_ms = divmod(time.time_ns(), 1_000_000)
    rand_a = sub_ms * 4096 // 1_000_000  # the fraction of the millisecond, in 12 bits
    rand_b = int.from_bytes(os.urandom(8), "big") & _RAND_B
    # Fields from the top: unix_ts_ms (48), version 7 (4), rand_a (12), variant 0b10 (2), rand_b (62).
    return str(uuid.UUID(int=(ms & _MS) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b))
