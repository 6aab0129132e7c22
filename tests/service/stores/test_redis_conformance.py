"""The redis plugin against the conformance suite, on the real Redis under a key prefix of each test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.stores.conformance import Case, StoreConformance
from tests.service.stores.conftest import STORES_REDIS_URL
from tests.service.stores.estate import CUTOFFS, REDIS_ESTATE, estate, redis_subjects, redis_window


class TestRedisStore(StoreConformance):
    @pytest.fixture
    def case(self, redis_prefix: str, tmp_path) -> Iterator[Case]:
        with estate(f"sqlite:///{tmp_path / 'estate.sqlite3'}", tmp_path, {"REDIS_URL": STORES_REDIS_URL},
                    files=(REDIS_ESTATE,), redis_prefix=redis_prefix) as registry:
            yield Case(registry.get("sessions"), redis_subjects("sessions"), expire_category="sessions",
                       cutoff=CUTOFFS["sessions"], hold_category="search_history", window=redis_window())
