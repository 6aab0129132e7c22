"""Governance: the processor register, records of processing, findings and privacy impact assessments, kept
current from what the service already knows (apps, purposes, stores, retention).

For other modules (the evidence pack, the erasure fan-out), callable without Flask with a Session:
`governance.ropa.build` (the ROPA as data), `governance.ropa.current_snapshot`,
`governance.processors.register_view` (with review status) and `.erasure_secret`,
`governance.assessments.with_approvals`, `governance.findings.open_findings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """Governance's routes, `flask governance`, its tables, the scheduler's drift check, the erasure fan-out and
    the audit evidence pack."""
    from governance import cli, evidence_cli, fanout, jobs, routes
    from service.config import load_settings
    from service.wiring import CronEntry

    wiring.blueprints += [routes.blp, routes.requests_blp, routes.acks_blp]
    wiring.cli_groups.append(cli.governance_cli)
    wiring.model_modules.append("governance.models")
    wiring.job_modules.append("governance.jobs")
    evidence_cli.register(wiring)  # the audit evidence pack (`flask evidence`, its job, governance's section)
    # Approved assessments are also checked on every read; the schedule catches those nobody reads.
    # GOVERNANCE_DRIFT_SECONDS sets how often (default 3600).
    wiring.cron.append(CronEntry(jobs.check_drift, queue="default",
                                 interval=lambda: jobs.drift_seconds(load_settings()),
                                 job_timeout=600, result_ttl=600))
    # Erasure fan-out: dsar calls this when an erasure request closes; the sweep re-sends what Redis lost.
    wiring.on_erasure_completed.append(fanout.on_erasure_completed)
    wiring.cron.append(CronEntry(jobs.sweep_notices, queue=fanout.QUEUE, interval=60, job_timeout=600,
                                 result_ttl=600))
