"""Operator commands through Flask's CLI: migrations, apps, API keys and key rotation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup

from service import audit
from service.config import ConfigError
from service.crypto.keys import rotate
from service.db import utcnow
from service.tenancy import (
    TenancyError,
    create_app_tenant,
    create_key,
    list_keys,
    parse_scopes,
    revoke_key,
    rotate_key,
)

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
@click.option("--expires-in", "days", type=click.IntRange(1, 3650), help="Days until the key stops working "
              "(default: until revoked).")
def keys_create(slug: str, scopes: str, label: str | None, days: int | None) -> None:
    """Create an API key; the key alone is printed on stdout, once."""
    expires = None if days is None else utcnow() + timedelta(days=days)
    try:
        with current_app.extensions["db"].session() as session:
            row, secret = create_key(session, slug, parse_scopes(scopes), label, expires)
            audit.record(session, app_id=row.app_id, actor="cli:keys create", action="key.created",
                         resource_type="api_key", resource_id=row.key_id,
                         details={"scopes": row.scopes, "expires_at": expires.isoformat() if expires else None})
    except TenancyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"key id {row.key_id} for {slug} with scopes {row.scopes}"
               + (f", expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""), err=True)
    click.echo(secret)


@keys_cli.command("rotate")
@click.argument("key_id")
@click.option("--overlap", "hours", type=click.IntRange(0, 24 * 90), default=24, show_default=True,
              help="Hours the old key keeps working beside the new one.")
def keys_rotate(key_id: str, hours: int) -> None:
    """Issue a new key with KEY_ID's app, scopes and label; the old one expires after the overlap."""
    try:
        with current_app.extensions["db"].session() as session:
            old, new, secret = rotate_key(session, key_id, timedelta(hours=hours))
            audit.record(session, app_id=old.app_id, actor="cli:keys rotate", action="key.rotated",
                         resource_type="api_key", resource_id=old.key_id,
                         details={"replaced_by": new.key_id, "old_expires_at": old.expires_at.isoformat()})
    except TenancyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"new key id {new.key_id}; {key_id} stops working {old.expires_at:%Y-%m-%d %H:%M} UTC", err=True)
    click.echo(secret)


@keys_cli.command("list")
@click.option("--app", "slug", help="Only this app's keys.")
def keys_list(slug: str | None) -> None:
    """Every key: id, app, label, scopes, created, expires, last used, state (never a secret)."""
    now = utcnow()
    with current_app.extensions["db"].sessions() as session:
        rows = list_keys(session, slug)

    def when(value: datetime | None) -> str:
        return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"

    for key, app_slug in rows:
        state = ("revoked" if key.revoked_at else "expired" if key.expires_at and key.expires_at <= now
                 else "active")
        click.echo("\t".join((key.key_id, app_slug, key.label or "-", key.scopes, when(key.created_at),
                              when(key.expires_at), when(key.last_used_at), state)))


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
