"""`flask evidence export --from --to --out` writes the audit evidence pack; `flask evidence verify PACK` checks its
signed manifest and every file's SHA-256 and exits non-zero naming the first mismatch."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import AppGroup

from governance import evidence
from service.evidence import Mismatch, verify

if TYPE_CHECKING:
    from service.wiring import Wiring

evidence_cli = AppGroup("evidence", help="The audit evidence pack: export and verify.")


@evidence_cli.command("export")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day (UTC).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day (UTC), inclusive.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True), help="The zip to write.")
def export_cmd(start: datetime, end: datetime, out: str) -> None:
    """Write the evidence pack of the period to OUT."""
    try:
        period = evidence.period_of(start.date(), end.date())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    ext = current_app.extensions
    with ext["db"].session() as session:
        index = evidence.build(session, ext["runtime"], ext["stores"], ext["wiring"].evidence, period, out)
    for s in index["sections"]:
        click.echo(f"{s['name']}: {len(s['files'])} files {s['summary']}", err=True)
    click.echo(f"wrote {out}")


@evidence_cli.command("verify")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False))
def verify_cmd(pack: str) -> None:
    """Check PACK's manifest signature and every file's SHA-256."""
    try:
        claims = verify(pack, current_app.extensions["runtime"].keys.signer)
    except Mismatch as exc:
        click.echo(f"FAIL {exc}", err=True)
        sys.exit(1)
    click.echo(f"OK {len(claims['files'])} files, period {claims['period']['from']} .. {claims['period']['to']}")


def register(wiring: Wiring) -> None:
    """The pack's command, its API job and governance's own section."""
    from governance import evidence_jobs, evidence_routes
    from service.wiring import CronEntry

    wiring.cli_groups.append(evidence_cli)
    wiring.evidence.append(evidence.SECTION)
    wiring.blueprints.append(evidence_routes.blp)
    wiring.model_modules.append("governance.evidence_models")
    wiring.job_modules.append("governance.evidence_jobs")
    # Exports a dead worker or a lost Redis job left behind are dispatched again within a minute.
    wiring.cron.append(CronEntry(evidence_jobs.reconcile, queue="default", interval=60, job_timeout=60,
                                 result_ttl=600))
    # Old packs' files go after EVIDENCE_KEEP_DAYS (their rows and digests stay); hourly is plenty for days.
    wiring.cron.append(CronEntry(evidence_jobs.sweep_packs, queue="default", interval=3600, job_timeout=300,
                                 result_ttl=600))
