"""Operator commands through Flask's CLI: migrations, apps, API keys and key rotation."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup

from service import audit
from service.config import ConfigError
from service.crypto.keys import rotate
from service.tenancy import TenancyError, create_app_tenant, create_key, parse_scopes, revoke_key

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

db_cli = AppGroup("db", help="Database migrations (Alembic).")
apps_cli = AppGroup("apps", help="Tenants: one app per product.")
keys_cli = AppGroup("keys", help="API keys and key material.")
demo_cli = AppGroup("demo", help="The embedded demo: a ready app and key for a first look.")


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    command.upgrade(alembic_config(current_app.config["SETTINGS"].database_url), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    command.downgrade(alembic_config(current_app.config["SETTINGS"].database_url), revision)


@db_cli.command("current")
def db_current() -> None:
    """Show the applied revision."""
    command.current(alembic_config(current_app.config["SETTINGS"].database_url))


@apps_cli.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
def apps_create(slug: str, name: str | None) -> None:
    """Create an app (tenant) named SLUG."""
    try:
        with current_app.extensions["db"].session() as session:
            app = create_app_tenant(session, slug, name)
            audit.record(session, app_id=app.id, actor="cli:apps create", action="app.created",
                         resource_type="app", resource_id=str(app.id), details={"slug": slug})
    except TenancyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created app {slug}", err=True)


@keys_cli.command("create")
@click.option("--app", "slug", required=True, help="The app (tenant) the key belongs to.")
@click.option("--scopes", required=True, help="Comma-separated scopes, e.g. consent:read,consent:write.")
@click.option("--label", help="What the key is for.")
def keys_create(slug: str, scopes: str, label: str | None) -> None:
    """Create an API key; the key alone is printed on stdout, once."""
    try:
        with current_app.extensions["db"].session() as session:
            row, secret = create_key(session, slug, parse_scopes(scopes), label)
            audit.record(session, app_id=row.app_id, actor="cli:keys create", action="key.created",
                         resource_type="api_key", resource_id=row.key_id, details={"scopes": row.scopes})
    except TenancyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"key id {row.key_id} for {slug} with scopes {row.scopes}", err=True)
    click.echo(secret)


@keys_cli.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke the key with KEY_ID (the part after `psk_`)."""
    try:
        with current_app.extensions["db"].session() as session:
            row = revoke_key(session, key_id)
            audit.record(session, app_id=row.app_id, actor="cli:keys revoke", action="key.revoked",
                         resource_type="api_key", resource_id=row.key_id)
    except TenancyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {key_id}", err=True)


def _rotate(name: str, what: str) -> None:
    try:
        kid = rotate(current_app.config["SETTINGS"], name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with current_app.extensions["db"].session() as session:
        audit.record(session, app_id=None, actor=f"cli:keys rotate-{what}", action=f"key.{what}_rotated",
                     resource_type="key", resource_id=kid)
    click.echo(f"new active {what} key {kid}; old keys are kept. Restart the web and worker processes.",
               err=True)
    click.echo(kid)


@keys_cli.command("rotate-signing")
def keys_rotate_signing() -> None:
    """Add a new active receipt-signing key; old keys stay in the JWKS for verification."""
    _rotate("SIGNING_KEYS", "signing")


@keys_cli.command("rotate-field")
def keys_rotate_field() -> None:
    """Add a new active field-encryption key; old keys stay for decryption."""
    _rotate("FIELD_KEYS", "field")


@demo_cli.command("setup")
@click.option("--slug", default="demo", show_default=True)
def demo_setup(slug: str) -> None:
    """Create the demo app when missing and print a new key with every scope, the company-wide platform scopes
    included, so one key does the README's whole walk-through (never use in production)."""
    from sqlalchemy import select

    from service.tenancy import APP_SCOPES, PLATFORM_SCOPES, App

    if current_app.config["SETTINGS"].production:
        raise click.ClickException("demo setup is disabled in production")
    with current_app.extensions["db"].session() as session:
        if session.scalar(select(App.id).where(App.slug == slug)) is None:
            create_app_tenant(session, slug, "Demo product")
        row, secret = create_key(session, slug, APP_SCOPES | PLATFORM_SCOPES, "demo")
        audit.record(session, app_id=row.app_id, actor="cli:demo setup", action="key.created",
                     resource_type="api_key", resource_id=row.key_id, details={"scopes": row.scopes})
    click.echo(f"\nDemo app {slug!r}. API key (shown once):\n\n    export KEY={secret}\n")


@demo_cli.command("seed")
@click.option("--people", default=50, show_default=True, type=click.IntRange(min=1),
              help="How many generated people to put in the demo estate.")
@click.option("--seed", "seed_value", default=27701, show_default=True, help="Random seed (same seed, same data).")
def demo_seed(people: int, seed_value: int) -> None:
    """Replace the demo estate's data (examples/estate.toml) with generated people, some old enough to expire."""
    from service.stores.demo import seed

    if current_app.config["SETTINGS"].production:
        raise click.ClickException("demo seed is disabled in production")
    try:
        done = seed(current_app.extensions["stores"], people, seed_value=seed_value)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    rows = ", ".join(f"{n} {table}" for table, n in done.rows.items())
    click.echo(f"seeded {done.people} people: {rows}; {done.files} files; {done.keys} Redis keys", err=True)


def register(app: Flask, groups: Iterable[click.Group] = ()) -> None:
    """Add the shared command groups, then `groups` (the domains', from the composition root)."""
    for group in (db_cli, apps_cli, keys_cli, demo_cli, *groups):
        app.cli.add_command(group)
