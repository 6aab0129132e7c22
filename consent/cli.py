"""`flask ledger verify`: recompute the consent chains, name the first broken event, and record the run."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from consent import counts, verifications
from consent.jobs import options_from_env
from consent.ledger import BATCH, Break

ledger_cli = AppGroup("ledger", help="The append-only consent ledger.")


@ledger_cli.command("verify")
@click.option("--all", "show_all", is_flag=True, help="List every break, not only the first.")
@click.option("--batch", type=click.IntRange(min=1), default=BATCH, show_default=True,
              help="Events read per round trip (memory stays flat whatever the ledger's size).")
@click.option("--since-checkpoint", "incremental", is_flag=True,
              help="Recompute only the chains that changed after the latest intact run's signed checkpoint, and "
                   "compare every older event's stored place with it (docs/architecture.md: what this misses).")
def ledger_verify(show_all: bool, batch: int, incremental: bool) -> None:
    """Exit 0 when every chain is intact; otherwise print the first broken event and exit 1.

    The run is recorded (GET /v1/ledger/verifications); an intact run records a signed checkpoint.
    """
    shown = 0

    def show(found: Break) -> None:
        nonlocal shown
        if show_all or not shown:
            click.echo(f"BROKEN: {found}", err=True)
        shown += 1

    options = options_from_env(batch=batch)
    row = verifications.run(current_app.extensions["db"], current_app.extensions["keys"],
                            current_app.config["SETTINGS"], trigger="cli", incremental=incremental,
                            options=options, on_break=show)
    assert row is not None  # not exclusive: a CLI run always runs
    if incremental and row.mode != "incremental":
        click.echo("no intact checkpoint to start from: verified in full", err=True)
    summary = (f"verification {row.id} ({row.mode}): {row.events_checked:,} events in {row.chains_checked:,} "
               f"chains recomputed")
    if row.breaks:
        click.echo(f"{summary}; {row.breaks:,} break(s)", err=True)
        raise SystemExit(1)
    covered = f"; checkpoint covers {row.events_covered:,} events" if row.events_covered is not None else ""
    click.echo(f"ledger intact: {summary}{covered}")


@ledger_cli.command("counts")
@click.option("--batch", type=click.IntRange(min=1), default=counts.BATCH, show_default=True,
              help="Events folded per transaction.")
def ledger_counts(batch: int) -> None:
    """Fold the ledger's new events into the consent counts the console reads (the scheduler does this every
    minute); events younger than two minutes are left to the next run."""
    done = counts.fold(current_app.extensions["db"], batch=batch)
    click.echo(f"folded {done.events:,} events in {done.batches:,} batch(es); counts reach {done.last_id or '-'}")
