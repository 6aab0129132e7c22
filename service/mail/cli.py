"""`flask mail ...`: the outbox for an operator: list rows by state (never a recipient or body) and requeue rows
left `unconfirmed` or `failed`, audited with the reason."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from service import audit
from service.db import utcnow
from service.mail import delivery
from service.mail.models import STATES, MailMessage

mail_cli = AppGroup("mail", help="The mail outbox: list messages, requeue unconfirmed or failed ones.")
REQUEUABLE = ("unconfirmed", "failed")


@mail_cli.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only rows in this state.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True, help="Newest first.")
def list_messages(state: str | None, limit: int) -> None:
    """Rows of the outbox, newest first: id, kind, state, attempts, created, last error. Recipients and bodies
    are encrypted and never shown."""
    stmt = select(MailMessage.id, MailMessage.kind, MailMessage.state, MailMessage.attempts,
                  MailMessage.created_at, MailMessage.last_error)
    if state:
        stmt = stmt.where(MailMessage.state == state)
    with current_app.extensions["db"].sessions() as session:
        rows = list(session.execute(stmt.order_by(MailMessage.created_at.desc(), MailMessage.id).limit(limit)))
    click.echo("id\tkind\tstate\tattempts\tcreated\tlast_error")
    for row_id, kind, row_state, attempts, created, error in rows:
        click.echo(f"{row_id}\t{kind}\t{row_state}\t{attempts}\t{created.isoformat(timespec='seconds')}\t"
                   f"{' '.join((error or '').split())}")


@mail_cli.command("requeue")
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (e.g. 'not in the relay's log'); audited. No personal data.")
def requeue(ids: tuple[str, ...], reason: str) -> None:
    """Send rows again that are `unconfirmed` (check the relay's log for their Message-ID first: it may have
    delivered them) or `failed`. All or none: an unknown id or a row in another state changes nothing.

    The attempt count is kept (it fences a late write from an earlier attempt), so a failed row that used every
    attempt gets one more; requeue it again if that fails too."""
    reason = reason.strip()
    if not reason:
        raise click.BadParameter("give a reason", param_hint="--reason")
    rt = current_app.extensions["runtime"]
    wanted = list(dict.fromkeys(ids))
    with rt.db.session() as session:
        rows = {r.id: r for r in session.scalars(select(MailMessage).where(MailMessage.id.in_(wanted))
                                                 .with_for_update())}
        refused = [f"{i} (unknown)" if i not in rows else f"{i} ({rows[i].state})" for i in wanted
                   if i not in rows or rows[i].state not in REQUEUABLE]
        if refused:
            raise click.ClickException(f"only unconfirmed or failed rows can be requeued; nothing changed: "
                                       f"{', '.join(refused)}")
        for row_id in wanted:
            row = rows[row_id]
            audit.record(session, app_id=row.app_id, actor="cli:mail requeue", action="mail.requeued",
                         resource_type="mail_message", resource_id=row_id,
                         details={"from": row.state, "kind": row.kind, "attempts": row.attempts, "reason": reason})
            row.state, row.next_attempt_at, row.lease_until = "queued", utcnow(), None
    for row_id in wanted:
        try:
            delivery.enqueue(rt, row_id)
        except Exception:  # noqa: BLE001 - the rows are queued: the sweep enqueues them within a minute
            click.echo(f"{row_id}: not enqueued now; the mail sweep will send it", err=True)
    click.echo(f"requeued {len(wanted)}")
