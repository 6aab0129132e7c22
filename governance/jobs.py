"""Job entry points: the scheduled drift check of approved assessments (idempotent: it only re-derives facts and
marks what changed; running it twice marks nothing more), and the erasure notices' sweep (their delivery job is
`governance.fanout.deliver`, preloaded through this module)."""

from __future__ import annotations

from governance import assessments, fanout
from service.config import Settings, env_int
from service.runtime import runtime
from service.stores.registry import registry_for


def drift_seconds(settings: Settings) -> int:
    """GOVERNANCE_DRIFT_SECONDS: how often the scheduler re-derives approved assessments' facts (default 3600)."""
    return env_int(settings.env, "GOVERNANCE_DRIFT_SECONDS", 3600, minimum=1)


def check_drift() -> list[str]:
    """Mark approved assessments whose facts changed `review_needed`; returns their ids."""
    rt = runtime()
    with rt.db.session() as session:
        return [a.id for a in assessments.refresh(session, registry_for(rt))]


def sweep_notices() -> dict[str, int]:
    """The cron job: re-enqueue due erasure notices and take back those whose worker died."""
    return fanout.sweep(runtime())
