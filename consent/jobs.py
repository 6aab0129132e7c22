"""The scheduled ledger verification (service.cron runs it daily by default) and its settings."""

from __future__ import annotations

import os
from datetime import timedelta

from consent import checkpoint as checkpoints
from consent.ledger import BATCH
from consent.verifications import Options, run
from service.config import env_int


def interval_seconds() -> int:
    """How often the scheduler runs a full verification (LEDGER_VERIFY_SECONDS, default a day)."""
    return env_int(os.environ, "LEDGER_VERIFY_SECONDS", 86400, minimum=60)


def timeout_seconds() -> int:
    """How long a run may take (LEDGER_VERIFY_TIMEOUT_SECONDS, default 6 h); a run still `running` after it
    is recorded as abandoned by the next."""
    return env_int(os.environ, "LEDGER_VERIFY_TIMEOUT_SECONDS", 6 * 3600, minimum=60)


def options_from_env(batch: int | None = None) -> Options:
    """A run's options: LEDGER_VERIFY_BATCH (events per round trip) and LEDGER_CHECKPOINT_LAG_SECONDS (events
    made this recently are left to the next checkpoint; default 600)."""
    return Options(batch=batch or env_int(os.environ, "LEDGER_VERIFY_BATCH", BATCH, minimum=1),
                   lag=timedelta(seconds=env_int(os.environ, "LEDGER_CHECKPOINT_LAG_SECONDS",
                                                 int(checkpoints.LAG.total_seconds()), minimum=0)),
                   stale_after=timedelta(seconds=timeout_seconds()))


def verify_ledger(incremental: bool = False) -> int | None:
    """Verify the ledger (in full unless `incremental`) and record the result; the verification's id, or None
    when another run was in progress. Safe to run again at any time: it only reads the ledger, and each run
    records its own observation."""
    from service.runtime import runtime

    rt = runtime()
    row = run(rt.db, rt.keys, rt.settings, trigger="cron", incremental=incremental, exclusive=True,
              options=options_from_env())
    return row.id if row else None


def fold_counts() -> int:
    """Fold the ledger's new events into consent_counts (consent.counts); the number folded. Safe to run again or
    alongside another run: the watermark row is locked while a batch is added."""
    from consent import counts
    from service.runtime import runtime

    return counts.fold(runtime().db).events
