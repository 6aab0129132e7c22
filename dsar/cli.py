"""`flask dsar ...`: dispatch the outbox, reconcile lost work, destroy expired exports, run the whole pass."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from dsar import maintenance, outbox
from service.runtime import use_runtime

dsar_cli = AppGroup("dsar", help="Rights requests: dispatch, reconcile, purge exports.")


@dsar_cli.command("dispatch")
def dispatch() -> None:
    """Enqueue jobs for outbox rows not yet dispatched."""
    click.echo(f"dispatched {outbox.dispatch(current_app.extensions['runtime'])}")


@dsar_cli.command("reconcile")
def reconcile() -> None:
    """Re-enqueue every unfinished task no job will run (lost from Redis, worker killed); close requests whose
    tasks are all final."""
    click.echo(f"re-enqueued {outbox.reconcile(current_app.extensions['runtime'])}")


@dsar_cli.command("purge-exports")
def purge_exports() -> None:
    """Destroy exports past their time."""
    with use_runtime(current_app.extensions["runtime"]):
        click.echo(f"destroyed {maintenance.purge_exports()} export(s)")


@dsar_cli.command("maintain")
def maintain() -> None:
    """The maintenance pass the scheduler runs: dispatch, reconcile, purge exports."""
    with use_runtime(current_app.extensions["runtime"]):
        click.echo(" ".join(f"{k}={v}" for k, v in maintenance.maintain().items()))
