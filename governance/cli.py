"""`flask governance ...`: export the records of processing, take a signed snapshot, list findings and
assessments, and check assessments for drift."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from governance import assessments, fanout, findings, ropa
from governance.processors import Actor

governance_cli = AppGroup("governance", help="Records of processing, findings, assessments and processors.")


def _rt() -> Any:
    return current_app.extensions["runtime"]


def _stores() -> Any:
    return current_app.extensions["stores"]


def _out(text: str, path: str | None) -> None:
    if path is None or path == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    click.echo(f"wrote {path}", err=True)


@governance_cli.command("ropa")
@click.option("--format", "fmt", type=click.Choice(("json", "csv", "html")),
              default="json", show_default=True)
@click.option("--out", default=None, help="File to write (default: standard output).")
def ropa_export(fmt: str, out: str | None) -> None:
    """Export the records of processing as JSON, CSV or HTML."""
    with current_app.extensions["db"].session() as session:
        record = ropa.build(session, _stores(), _rt().settings)
    text = (ropa.to_csv(record) if fmt == "csv" else ropa.to_html(record) if fmt == "html"
            else json.dumps(record, indent=2, ensure_ascii=False))
    _out(text, out)


@governance_cli.command("snapshot")
def ropa_snapshot() -> None:
    """Freeze the ROPA as a signed, dated snapshot; prints its id and SHA-256."""
    with current_app.extensions["db"].session() as session:
        snapshot = ropa.take_snapshot(session, _rt(), _stores(), Actor("cli:governance snapshot"))
    click.echo(f"snapshot {snapshot.id}: {snapshot.activities} activities, sha256 {snapshot.sha256}")


@governance_cli.command("findings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of one line per finding.")
def findings_list(as_json: bool) -> None:
    """List open findings; exits 1 when there is any (for a CI or cron check)."""
    with current_app.extensions["db"].session() as session:
        found = findings.findings(session, _stores(), ack_days=fanout.ack_days(_rt().settings.env))
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        for f in found:
            click.echo(f"{f['kind']:32} {f['subject']:40} {f['message']}")
        click.echo(f"{len(found)} open finding(s)", err=True)
    sys.exit(1 if found else 0)


@governance_cli.command("assessments")
@click.option("--state", default=None, help="Only assessments in this state.")
def assessments_list(state: str | None) -> None:
    """List assessments with their state, approver and review date (drift re-derived first)."""
    with current_app.extensions["db"].session() as session:
        assessments.refresh(session, _stores(), Actor("cli:governance assessments"))
        for a in assessments.with_approvals(session, _stores()):
            if state not in (None, a["state"]):
                continue
            approved = f"approved by {a['approved_by']} on {a['approved_at']:%Y-%m-%d}" if a["approved_at"] else ""
            due = f"review due {a['review_due']}" if a["review_due"] else ""
            drift = f"changed: {', '.join(d['kind'] + ' ' + d['subject'] for d in a['drift'])}" if a["drift"] else ""
            click.echo("  ".join(x for x in (a["id"], a["state"], a["app"] or "", a["activity"] or "-",
                                            a["title"], approved, due, drift) if x))


@governance_cli.command("check-drift")
def check_drift() -> None:
    """Re-derive approved assessments' facts now; prints those newly marked review_needed."""
    with current_app.extensions["db"].session() as session:
        for a in assessments.refresh(session, _stores(), Actor("cli:governance check-drift")):
            click.echo(f"{a.id} review_needed: {', '.join(d['kind'] + ' ' + d['subject'] for d in a.drift or [])}")
