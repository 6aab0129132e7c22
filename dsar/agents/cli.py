"""`flask drp ...`: register and list authorised agents, run the DRP pass."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from dsar.agents import service as drp
from dsar.agents import sweep as drp_sweep
from service.errors import DomainError
from service.runtime import use_runtime
from service.tenancy import App

drp_cli = AppGroup("drp", help="Data Rights Protocol: authorised agents and their requests.")


def _registrar(session: object, slug: str, command: str) -> drp.Registrar:
    app_id = session.scalar(select(App.id).where(App.slug == slug))  # type: ignore[attr-defined]
    if app_id is None:
        raise click.ClickException(f"no app {slug!r}")
    return drp.Registrar(app_id=app_id, name=f"cli:drp {command}")


@drp_cli.command("register")
@click.option("--app", "slug", required=True, help="the app (Covered Business) accepting the agent")
@click.option("--agent-id", required=True)
@click.option("--verify-key", required=True, help="the agent's base64 Ed25519 key from the service directory")
@click.option("--business-id", required=True, help="the app's id in the DRP service directory")
@click.option("--name", default=None)
@click.option("--no-trust-verification", is_flag=True, help="always send the person a code")
def register(slug: str, agent_id: str, verify_key: str, business_id: str, name: str | None,
             no_trust_verification: bool) -> None:
    """Accept an authorised agent for an app."""
    with current_app.extensions["db"].session() as session:
        try:
            agent = drp.register_agent(session, _registrar(session, slug, "register"), {
                "agent_id": agent_id, "verify_key": verify_key, "business_id": business_id, "name": name,
                "trust_verification": not no_trust_verification})
        except DomainError as exc:
            raise click.ClickException(f"{exc.message}: {exc.errors or ''}") from None
        click.echo(f"registered agent {agent.agent_id} for {slug} as business {agent.business_id}")


@drp_cli.command("list")
@click.option("--app", "slug", required=True)
def list_agents(slug: str) -> None:
    """The app's agents."""
    with current_app.extensions["db"].sessions() as session:
        for a in drp.list_agents(session, _registrar(session, slug, "list").app_id):
            click.echo(f"{a.agent_id}\t{a.business_id}\t{'revoked' if a.revoked_at else 'active'}")


@drp_cli.command("revoke")
@click.option("--app", "slug", required=True)
@click.option("--agent-id", required=True)
@click.option("--reason", required=True)
def revoke(slug: str, agent_id: str, reason: str) -> None:
    """Stop accepting an agent (its tokens stop working at once)."""
    with current_app.extensions["db"].session() as session:
        try:
            drp.revoke_agent(session, _registrar(session, slug, "revoke"), agent_id, reason)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(f"revoked {agent_id}")


@drp_cli.command("sweep")
def sweep() -> None:
    """The DRP pass the scheduler runs: verification windows, timed statuses, lost opt-ins and callbacks."""
    with use_runtime(current_app.extensions["runtime"]):
        click.echo(" ".join(f"{k}={v}" for k, v in drp_sweep.sweep().items()))
