"""`flask incidents ...`: list the register (overdue first with --overdue), show one incident with its clocks,
assess one in the foreground, print its report, timeline or signed record."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from incidents import assessment, cases, clocks, report
from incidents.models import Incident
from service.errors import DomainError
from service.tenancy import App

incidents_cli = AppGroup("incidents", help="The breach and incident register: clocks, assessments, reports.")


def _rt() -> Any:
    return current_app.extensions["runtime"]


def _table() -> clocks.Table:
    return clocks.current_table(_rt().settings)


def _app_id(session: Any, slug: str) -> int:
    app_id = session.scalar(select(App.id).where(App.slug == slug))
    if app_id is None:
        raise click.ClickException(f"no app {slug!r}")
    return app_id


def _incident(session: Any, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise click.ClickException(f"no incident {incident_id!r}")
    return incident


def _when(value: Any) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "-"


@incidents_cli.command("list")
@click.option("--app", "slug", required=True, help="The app (tenant) whose register to list.")
@click.option("--overdue", is_flag=True, help="Only incidents with an overdue obligation, oldest due first.")
@click.option("--state", type=click.Choice(["open", "assessed", "contained", "closed"]))
def list_cmd(slug: str, overdue: bool, state: str | None) -> None:
    """One line per incident: id, state, severity, awareness, jurisdictions, and OVERDUE when an obligation is."""
    with _rt().db.sessions() as session:
        items, _ = cases.list_incidents(session, _app_id(session, slug), _table(), state=state,
                                           overdue=True if overdue else None, limit=10_000)
    for v in items:
        flag = "  OVERDUE" if v["overdue"] else ""
        click.echo(f"{v['id']}  {v['state']:<9} {v['severity'] or '-':<8} aware {_when(v['discovered_at'])}  "
                   f"{','.join(v['jurisdictions'])}  {v['title'][:60]}{flag}")


@incidents_cli.command("show")
@click.argument("incident_id")
def show_cmd(incident_id: str) -> None:
    """The incident's state and each obligation with its due time, done or not."""
    with _rt().db.sessions() as session:
        v = cases.view(session, _incident(session, incident_id), _table())
        runs = [assessment.counts(session, r) for r in assessment.runs_of(session, incident_id)]
    click.echo(f"{v['id']}  {v['title']}\n  state {v['state']} (v{v['version']}), risk {v['risk'] or '-'}, "
               f"aware {_when(v['discovered_at'])}, window {_when(v['occurred_from'])} .. {_when(v['occurred_until'])}")
    for o in v["obligations"]:
        status = ("not required" if not o["applies"] else f"met {_when(o['met_at'])} ({o['met_by']})" if o["done"]
                  else "OVERDUE" if o["overdue"] else "open")
        due = _when(o["due_at"]) if o["due_at"] else o["deadline"]
        click.echo(f"  {o['jurisdiction']:<8} {o['obligation']:<9} due {due}  {status}")
    for r in runs[:1]:
        click.echo(f"  latest assessment {r['run']}: {r['state']}, {r['distinct_subjects']} people "
                   f"({r['with_contact']} with an email), not determinable: {r['not_determinable'] or 'none'}")


@incidents_cli.command("assess")
@click.argument("incident_id")
def assess_cmd(incident_id: str) -> None:
    """Run an assessment in the foreground and print its counts."""
    rt = _rt()
    try:
        with rt.db.session() as session:
            run_id = assessment.request_run(session, _incident(session, incident_id), "cli:incidents assess").id
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    assessment.execute(rt, current_app.extensions["stores"], run_id)
    with rt.db.sessions() as session:
        click.echo(json.dumps(assessment.counts(session, assessment.get_run(session, _incident(session, incident_id),
                                                                            run_id)), indent=2))


@incidents_cli.command("report")
@click.argument("incident_id")
@click.option("--format", "fmt", type=click.Choice(["json", "html"]), default="json")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en")
def report_cmd(incident_id: str, fmt: str, lang: str) -> None:
    """The Art. 33(3) report to the authority."""
    with _rt().db.sessions() as session:
        content = report.content(session, _rt(), _incident(session, incident_id), _table(), lang)
    click.echo(report.html(content) if fmt == "html" else json.dumps({k: v for k, v in content.items()
                                                                      if k != "labels"}, indent=2, ensure_ascii=False))


@incidents_cli.command("timeline")
@click.argument("incident_id")
def timeline_cmd(incident_id: str) -> None:
    """Every step taken on the incident, from the audit trail."""
    with _rt().db.sessions() as session:
        for e in cases.timeline(session, _incident(session, incident_id)):
            click.echo(f"{_when(e['at'])}  {e['action']:<32} {e['actor']}  {json.dumps(e['details'])}")


@incidents_cli.command("record")
@click.argument("incident_id")
def record_cmd(incident_id: str) -> None:
    """The signed incident record (compact JWS) of a closed incident."""
    with _rt().db.sessions() as session:
        incident = _incident(session, incident_id)
        if incident.record is None:
            raise click.ClickException("the incident is not closed; its record is signed when it closes")
        click.echo(incident.record)
