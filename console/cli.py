"""`flask operators ...`: create an operator (printing its one-time set-up link), list, limit, disable, reset."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from console import operators
from console.demo import demo
from console.models import ROLES
from service.tenancy import App

operators_cli = AppGroup("operators", help="Operations console accounts.")
operators_cli.add_command(demo)


def setup_url(token: str) -> str:
    return f"{current_app.config['SETTINGS'].public_url}/console/setup/{token}"


def _app_ids(slugs: tuple[str, ...]) -> list[int] | None:
    if not slugs:
        return None
    with current_app.extensions["db"].sessions() as session:
        found = dict(session.execute(select(App.slug, App.id).where(App.slug.in_(slugs))).all())
    unknown = sorted(set(slugs) - set(found))
    if unknown:
        raise click.ClickException(f"app: no app {', '.join(unknown)} (flask apps create SLUG)")
    return sorted(found.values())


@operators_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the operator may do.")
@click.option("--app", "slugs", multiple=True, help="Limit the operator to this app (repeat for more; "
              "default: every app).")
def create(email: str, role: str, slugs: tuple[str, ...]) -> None:
    """Create an operator and print its one-time set-up link (24 hours)."""
    app_ids = _app_ids(slugs)
    try:
        with current_app.extensions["db"].session() as session:
            row = operators.create(session, email, role, app_ids, by="cli:operators create")
            token, expires = operators.mint_setup(session, row, by="cli:operators create")
    except operators.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"operator {row.id} ({role}); open once, before {expires:%Y-%m-%d %H:%M} UTC, to set a password"
               + (" and an authenticator" if operators.totp_required(row) else "") + ":", err=True)
    click.echo(setup_url(token))


@operators_cli.command("reset")
@click.argument("email")
def reset(email: str) -> None:
    """Forget the operator's password and authenticator, sign it out everywhere, print a new set-up link."""
    try:
        with current_app.extensions["db"].session() as session:
            _row, token, expires = operators.reset(session, email, by="cli:operators reset")
    except operators.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"open once, before {expires:%Y-%m-%d %H:%M} UTC:", err=True)
    click.echo(setup_url(token))


@operators_cli.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable an operator: no sign-in any more, its sessions end at once."""
    try:
        with current_app.extensions["db"].session() as session:
            row = operators.disable(session, email, by="cli:operators disable")
    except operators.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"disabled operator {row.id}", err=True)


@operators_cli.command("limit")
@click.argument("email")
@click.option("--app", "slugs", multiple=True, help="An app the operator may see (repeat for more; none: every "
              "app).")
def limit(email: str, slugs: tuple[str, ...]) -> None:
    """Change the apps an operator (a local or a single sign-on one) may see."""
    app_ids = _app_ids(slugs)
    try:
        with current_app.extensions["db"].session() as session:
            row = operators.limit(session, email, app_ids, by="cli:operators limit")
    except operators.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"operator {row.id}: " + ("every app" if row.app_ids is None else f"{len(row.app_ids)} app(s)"),
               err=True)


@operators_cli.command("list")
def list_operators() -> None:
    """Every operator: id, email, role, apps, state."""
    with current_app.extensions["db"].sessions() as session:
        rows = operators.list_all(session)
        slugs = dict(session.execute(select(App.id, App.slug)).all())
    for row in rows:
        apps = "all apps" if row.app_ids is None else ",".join(slugs.get(i, str(i)) for i in row.app_ids)
        state = ("disabled" if row.disabled_at else "set-up pending" if row.setup_completed_at is None
                 else "active")
        factor = "sso" if row.sso_subject else "totp" if row.totp_enabled_at else "password only"
        click.echo(f"{row.id}\t{row.email}\t{row.role}\t{apps}\t{state}\t{factor}")
