"""`flask dsar ...`: dispatch the outbox, reconcile lost work, destroy expired exports."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from dsar import jobs, service
from service.runtime import use_runtime

dsar_cli = AppGroup("dsar", help="Rights requests: dispatch, reconcile, purge exports.")


@dsar_cli.command("dispatch")
def dispatch() -> None:
    """Enqueue jobs for outbox rows not yet dispatched."""
    click.echo(f"dispatched {service.dispatch(current_app.extensions['runtime'])}")


@dsar_cli.command("reconcile")
def reconcile() -> None:
    """Re-enqueue every unfinished task whose worker is gone (lost from Redis, worker killed)."""
    click.echo(f"re-enqueued {service.reconcile(current_app.extensions['runtime'])}")


@dsar_cli.command("purge-exports")
def purge_exports() -> None:
    """Destroy exports past their time."""
    with use_runtime(current_app.extensions["runtime"]):
        click.echo(f"destroyed {jobs.purge_exports()} export(s)")
