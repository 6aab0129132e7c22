"""Incidents: the breach register, legal clocks per jurisdiction, who was affected, reports and signed records."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """Incidents' routes, `flask incidents`, its tables and jobs, the overdue obligations in /readyz, its part
    of the evidence pack, and the
    scheduler's pass (stranded assessment runs, subject lists past their incident's retention)."""
    from incidents import cli, config, jobs, pack, routes
    from service.wiring import CronEntry, ReadinessDetail

    wiring.blueprints.append(routes.blp)
    wiring.cli_groups.append(cli.incidents_cli)
    wiring.evidence.append(pack.SECTION)
    wiring.model_modules.append("incidents.models")
    wiring.job_modules.append("incidents.jobs")
    wiring.on_runtime.append(config.check)  # a bad [incidents] setting or clock override stops the service
    wiring.readiness.append(ReadinessDetail("incidents", routes.readiness, missing={"overdue_obligations": None}))
    wiring.cron.append(CronEntry(jobs.maintain, queue="default", interval=300, job_timeout=3600, result_ttl=600))
