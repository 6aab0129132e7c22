"""The files plugin against the conformance suite, on the demo estate's uploads folder in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.stores.conformance import Case, StoreConformance
from tests.service.stores.estate import CUTOFFS, estate, file_subjects, file_window


class TestFileStore(StoreConformance):
    @pytest.fixture(params=["photos", "avatars"])
    def case(self, request: pytest.FixtureRequest, tmp_path) -> Iterator[Case]:
        with estate(f"sqlite:///{tmp_path / 'estate.sqlite3'}", tmp_path) as registry:
            yield Case(registry.get("uploads"), file_subjects(request.param), expire_category=request.param,
                       cutoff=CUTOFFS[request.param], hold_category="avatars", batch_size=1
                       if request.param == "avatars" else 3, window=file_window(request.param))
