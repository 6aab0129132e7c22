"""schemathesis against a live server on PostgreSQL (tests/service/fuzzing.py): a key with every scope, every
check, the stateful phase following the document's links, bounded to about three minutes; any finding fails."""

from __future__ import annotations

import os

import pytest

from tests.conftest import BACKENDS
from tests.service.fuzzing import run

# schemathesis' own budget; the server's start-up (migrate, seed) adds about 35 s. `make fuzz` is the long run.
SECONDS = int(os.environ.get("FUZZ_PASS_SECONDS", "140"))


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="the fuzz pass runs on PostgreSQL (TEST_DATABASES)")
def test_schemathesis_finds_nothing(tmp_path):
    report = tmp_path / "fuzz-report"
    # Without `coverage` (fuzzing.PHASES): its deterministic cases are not bounded by --max-time.
    outcome = run(SECONDS, report, seed=int(os.environ["FUZZ_SEED"]) if "FUZZ_SEED" in os.environ else None)
    assert outcome.returncode == 0, f"schemathesis found something (report: {report}):\n{outcome.summary}"
    assert "Stateful" in outcome.summary and "generated" in outcome.summary
