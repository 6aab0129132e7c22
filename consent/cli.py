"""`flask ledger verify`: recompute every consent chain and name the first broken event."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from consent.ledger import verify

ledger_cli = AppGroup("ledger", help="The append-only consent ledger.")


@ledger_cli.command("verify")
@click.option("--all", "show_all", is_flag=True, help="List every break, not only the first.")
@click.option("--batch", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Events read per round trip.")
def ledger_verify(show_all: bool, batch: int) -> None:
    """Exit 0 when every chain is intact; otherwise print the first broken event and exit 1."""
    with current_app.extensions["db"].sessions() as session:
        breaks = 0
        for found in verify(session, batch=batch):
            breaks += 1
            click.echo(f"BROKEN: {found}", err=True)
            if not show_all:
                break
    if breaks:
        raise SystemExit(1)
    click.echo("ledger intact")
