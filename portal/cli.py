"""`flask portal ...`: sign-in links for support and development, and the demo's privacy policy."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from consent import policies
from consent.context import Context
from portal import links
from service.tenancy import App, Principal

portal_cli = AppGroup("portal", help="The privacy centre: sign-in links and the demo's policy.")

DEMO_POLICY = {"key": "app", "title": "Demo product privacy policy", "purposes": [
    {"key": "essential", "description": "Run the service you signed up for: your account and your devices.",
     "required": True, "honors_gpc": False, "lawful_basis": "contract", "retention": "P2Y",
     "pii_categories": ["account"], "third_party": None},
    {"key": "analytics", "description": "Measure how the product is used, to improve it.", "required": False,
     "honors_gpc": True, "lawful_basis": "consent", "retention": "P180D", "pii_categories": ["usage"],
     "third_party": None},
    {"key": "marketing", "description": "Offers tailored to you, by email.", "required": False,
     "honors_gpc": True, "lawful_basis": "consent", "retention": None, "pii_categories": ["contact", "usage"],
     "third_party": "Example Ads B.V."},
]}
DEMO_TEXT = ("We collect what the product needs to work, and with your consent how you use it and offers for you. "
             "You can change your choices at any time in this privacy centre.")


def _app(slug: str) -> App:
    with current_app.extensions["db"].sessions() as session:
        row = session.scalar(select(App).where(App.slug == slug))
    if row is None:
        raise click.ClickException(f"no app {slug!r} (flask apps create {slug})")
    return row


@portal_cli.command("link")
@click.argument("slug")
@click.argument("subject_id")
@click.option("--locale", default=None, help="en or zh_Hans (default: the person's browser)")
def link(slug: str, subject_id: str, locale: str | None) -> None:
    """Print a single-use, 10-minute sign-in link to SLUG's privacy centre for its user SUBJECT_ID."""
    app = _app(slug)
    with current_app.extensions["db"].session() as session:
        url, expires = links.mint_subject_link(
            session, current_app.extensions["keys"], current_app.config["SETTINGS"], app_id=app.id, slug=app.slug,
            actor="cli:portal link", subject_id=subject_id, return_url=None, locale=locale)
    click.echo(f"open within 10 minutes (until {expires:%H:%M} UTC), once:", err=True)
    click.echo(url)


@portal_cli.command("demo")
@click.option("--slug", default="demo", show_default=True)
@click.option("--subject", "subject_id", default="demo-user", show_default=True)
def demo(slug: str, subject_id: str) -> None:
    """Give the demo app a privacy policy when it has none, and print a sign-in link for a demo user."""
    settings = current_app.config["SETTINGS"]
    if settings.production:
        raise click.ClickException("portal demo is disabled in production")
    app = _app(slug)
    ctx = Context(Principal(app.id, app.slug, "cli", frozenset()), current_app.extensions["keys"], settings,
                  acting_as="cli:portal demo")
    with current_app.extensions["db"].session() as session:
        if not policies.list_policies(session, app.id):
            policies.create_policy(session, ctx, DEMO_POLICY)
            policies.add_version(session, ctx, "app", {"version": "1", "text": DEMO_TEXT, "material": True})
        url, _ = links.mint_subject_link(session, current_app.extensions["keys"], settings, app_id=app.id,
                                         slug=app.slug, actor="cli:portal demo", subject_id=subject_id,
                                         return_url=None, locale=None)
    click.echo(f"\nPrivacy centre of {slug!r}, signed in as {subject_id!r} (open once, within 10 minutes):\n\n"
               f"    {url}\n\nOpen web (anyone, code by email to instance/mail/): "
               f"{settings.public_url}/privacy/{slug}/\n"
               f"A new link: flask --app wsgi portal link {slug} {subject_id}\n")
