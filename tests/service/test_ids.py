"""Time-ordered identifiers (UUIDv7)."""

import time
import uuid

from service.ids import uuid7


def test_is_an_rfc_9562_version_7_uuid_carrying_its_creation_time():
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(uuid7())
    after = time.time_ns() // 1_000_000
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_ids_made_in_sequence_sort_in_that_order_and_are_distinct():
    ids = []
    for _ in range(5):
        ids += [uuid7() for _ in range(2_000)]
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    # The 60 bits of time (milliseconds and the sub-millisecond fraction) never go down; the random tail may
    # order two ids of the same 244 ns apart.
    stamps = [uuid.UUID(i).int >> 64 for i in ids]
    assert stamps == sorted(stamps)
    assert ids[:2_000] < ids[-2_000:] and max(ids[:2_000]) < min(ids[-2_000:])
