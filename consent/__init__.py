"""Consent: privacy policies and their versions, per-purpose consent, withdrawal, receipts and the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """Consent's routes, `flask ledger`, its tables, the scheduled ledger verification, the status and recording
    fast paths and the ledger's line in /readyz."""
    from consent import cli, counts, fastpath, fastrecord, jobs, pack, routes, verifications
    from service.wiring import CronEntry, ReadinessDetail

    wiring.blueprints += [routes.policy_blp, routes.blp]
    wiring.cli_groups.append(cli.ledger_cli)
    wiring.evidence.append(pack.SECTION)
    wiring.model_modules.append("consent.models")
    wiring.job_modules.append("consent.jobs")
    # A full verification, recorded in ledger_verifications (one that finds another in progress records
    # nothing), every LEDGER_VERIFY_SECONDS (default a day; also once when the scheduler starts).
    wiring.cron.append(CronEntry(jobs.verify_ledger, queue="default", interval=jobs.interval_seconds,
                                 job_timeout=jobs.timeout_seconds, result_ttl=86400))
    # The console's consent rates read daily counts kept by this fold (consent.counts), every
    # CONSENT_COUNTS_SECONDS (default a minute); the recording path never touches them.
    wiring.cron.append(CronEntry(jobs.fold_counts, queue="default", interval=counts.interval_seconds,
                                 job_timeout=3600, result_ttl=3600))
    # The recording path sits behind the status one (the status check is the hotter call), and reads the policy
    # cache fastpath.install makes, at request time.
    wiring.on_app.append(fastrecord.install)
    wiring.on_app.append(fastpath.install)
    wiring.readiness.append(ReadinessDetail("ledger", verifications.readiness,
                                            missing={"last_verification": None}))
