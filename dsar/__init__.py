"""Data-subject rights requests: intake, verification, deadlines, execution across stores, holds and evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """Rights requests' routes, `flask dsar`, their tables, the job modules the worker preloads and the scheduled
    maintenance pass. (Legal holds, which erasure consults, are the `holds` package's.)"""
    from dsar import cli, maintenance, pack, routes
    from dsar.agents import cli as drp_cli
    from dsar.agents import routes as drp_routes
    from dsar.agents import sweep as drp_sweep
    from service.wiring import CronEntry

    wiring.blueprints += [routes.blp, drp_routes.blp, drp_routes.admin_blp]
    wiring.cli_groups += [cli.dsar_cli, drp_cli.drp_cli]
    wiring.evidence.append(pack.SECTION)
    wiring.model_modules += ["dsar.models", "dsar.agents.models"]
    wiring.job_modules += ["dsar.jobs", "dsar.maintenance", "dsar.agents.callbacks", "dsar.agents.optin",
                           "dsar.agents.sweep"]
    # Data Rights Protocol: verification windows, statuses that change with time, lost opt-ins and callbacks.
    wiring.cron.append(CronEntry(drp_sweep.sweep, queue="dsar", interval=_maintenance_seconds, job_timeout=300,
                                 result_ttl=600))
    # Outbox dispatch, reconciliation of lost or orphaned tasks, destruction of old exports, every
    # DSAR_MAINTENANCE_SECONDS (default 60).
    wiring.cron.append(CronEntry(maintenance.maintain, queue="dsar", interval=_maintenance_seconds,
                                 job_timeout=300, result_ttl=600))


def _maintenance_seconds() -> int:
    import os

    from service.config import env_int

    return env_int(os.environ, "DSAR_MAINTENANCE_SECONDS", 60, minimum=1)
