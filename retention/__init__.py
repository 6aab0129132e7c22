"""Retention: lifecycle policies per store and category, scheduled destruction runs and their certificates."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """Retention's routes, `flask retention`, its tables, the policy sync at start-up, the data map's retention
    column and the scheduler's tick."""
    from retention import cli, config, jobs, pack, routes, views
    from service.config import load_settings
    from service.wiring import CronEntry

    wiring.blueprints.append(routes.blp)
    wiring.cli_groups.append(cli.retention_cli)
    wiring.evidence.append(pack.SECTION)
    wiring.model_modules.append("retention.models")
    wiring.job_modules.append("retention.jobs")
    # The policies declared in the TOML file are checked (a bad one stops the service) and synced.
    wiring.on_runtime.append(config.load)
    wiring.datamap_lookup = views.datamap_lookup
    # The tick starts the runs of due policies. It reads the policies each time, so policies created through the
    # API after the scheduler started are scheduled too, each by its own cron expression. RETENTION_TICK_SECONDS
    # sets how often it looks (default 60; a policy's schedule cannot fire more often than that).
    wiring.cron.append(CronEntry(jobs.run_due_policies, queue="retention",
                                 interval=lambda: config.tick_seconds(load_settings()),
                                 job_timeout=300, result_ttl=600))
