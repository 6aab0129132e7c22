"""`flask operators demo` (added to the group by console.cli): a development-only demo operator, set up through
the console's own set-up steps with a generated password (an admin also an authenticator) printed once."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import click
import pyotp
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from console import operators
from console.models import ROLES
from service.crypto.keys import KeyMaterial

DEMO_EMAIL = "demo-agent@example.com"
BY = "cli:operators demo"


@dataclass(frozen=True)
class Ready:
    """An operator ready to sign in: its id, the password and, for an admin, the authenticator's secret."""

    id: int
    password: str
    totp_secret: str | None


def ready_operator(session: Session, keys: KeyMaterial, email: str, role: str, password: str | None = None,
                   by: str = BY) -> Ready:
    """Create the operator (or reset an existing one) and complete its set-up as its link's pages would: the
    password (generated unless given), an authenticator for an admin, the link used up. The caller commits."""
    password = password or secrets.token_urlsafe(15)
    if operators.by_email(session, email) is None:
        row = operators.create(session, email, role, None, by=by)
        token, _ = operators.mint_setup(session, row, by=by)
    else:
        row, token, _ = operators.reset(session, email, by=by)
        if row.role != role:
            raise operators.OperatorError(f"email: operator {email!r} exists with role {row.role!r}")
    row, digest = operators.setup_target(session, token)
    problem = operators.choose_password(session, row, password)
    if problem is not None:
        raise operators.OperatorError(f"password: refused ({problem})")
    secret = None
    if operators.totp_required(row):
        secret = operators.start_totp(session, keys, row)
        # The code of the previous time step: it is accepted (one step of drift), and leaves the current and next
        # steps' codes free for the operator's first sign-in (a code is accepted once).
        if not operators.confirm_totp(session, keys, row, pyotp.TOTP(secret).at(time.time() - 30)):
            raise operators.OperatorError("authenticator: the enrolment code was refused")
    if not operators.finish_setup(session, row, digest):
        raise operators.OperatorError("set-up: the link was used meanwhile")
    return Ready(row.id, password, secret)


@click.command("demo")
@click.option("--email", default=DEMO_EMAIL, show_default=True, help="The demo operator's email.")
@click.option("--role", default="agent", show_default=True, type=click.Choice(ROLES),
              help="Its role (an admin gets an authenticator whose key is printed).")
@with_appcontext
def demo(email: str, role: str) -> None:
    """Create (or reset) a demo operator with a new password and print how to sign in (development only)."""
    settings = current_app.config["SETTINGS"]
    if settings.production:
        raise click.ClickException("operators demo is disabled in production")
    try:
        with current_app.extensions["db"].session() as session:
            ready = ready_operator(session, current_app.extensions["keys"], email, role)
    except operators.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    lines = [f"\nOperations console: {settings.public_url}/console/  (demo operator {ready.id}, role {role})",
             f"    email:    {email}", f"    password: {ready.password}"]
    if ready.totp_secret:
        lines.append(f"    authenticator key (TOTP, add it to an app): {ready.totp_secret}")
    lines.append("The password is shown once; run `flask --app wsgi operators demo` again for a new one.\n")
    click.echo("\n".join(lines))
