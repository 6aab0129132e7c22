"""The sql plugin against the conformance suite on SQLite, PostgreSQL and MariaDB, over the demo estate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.stores.conformance import Case, StoreConformance
from tests.service.stores.estate import CUTOFFS, estate, sql_subjects, sql_window


class TestSqlStore(StoreConformance):
    # device_log: plain rows; orders: anonymised (keyed hash, marker column); location: a column category;
    # photos: a parent (albums) reached through a child (photos) it must outlive while referenced.
    @pytest.fixture(params=["device_log", "orders", "location", "photos"])
    def case(self, request: pytest.FixtureRequest, sql_url: str, tmp_path) -> Iterator[Case]:
        with estate(sql_url, tmp_path) as registry:
            yield Case(registry.get("cloud-photos"), sql_subjects(request.param), expire_category=request.param,
                       cutoff=CUTOFFS[request.param], hold_category="orders", kept_with_hold={"contact"},
                       window=sql_window(request.param))
