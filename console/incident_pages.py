"""Incidents in the console: each app's register with the legal clocks' time left (overdue first on request), an
incident's page (obligations, notifications, assessments, report, signed record, timeline) and its actions: open,
move to the next state with a reason, record a notification, assess who was affected. All through
incidents.cases/assessment as the API does, checked by its schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import format_timedelta, gettext
from marshmallow import ValidationError

from console.auth import INCIDENTS, READ, require, visible
from console.hold_pages import chosen_app
from console.operators import actor as operator_actor
from console.request_pages import _apps
from console.web import blp, page, page_number, signed_in
from incidents import assessment, campaigns, cases, clocks, jobs, report, schemas
from incidents.models import OBLIGATIONS, RISKS, Incident
from service.db import utcnow
from service.errors import DomainError

PAGE_SIZE = 25
LANGUAGES = ("en", "zh")  # a campaign's message languages (incidents.schemas)
# The fields each next state asks for besides the reason (incidents.cases._enter checks them).
NEEDS = {"assessed": ("risk", "risk_reasoning"), "contained": (), "closed": ("root_cause", "measures")}


def _db() -> Any:
    return current_app.extensions["db"]


def _table() -> clocks.Table:
    return clocks.current_table(current_app.config["SETTINGS"])


def _actor(app_id: int) -> cases.Actor:
    who = signed_in()
    assert who is not None
    return cases.Actor(operator_actor(who.id), app_id)


def time_left(due: datetime | None, now: datetime) -> str | None:
    """"in 3 hours" or "3 hours ago", in the operator's language."""
    return None if due is None else format_timedelta(due - now, add_direction=True, threshold=1.1)


def _when(text: str) -> str | None:
    """A datetime-local field's value (taken as UTC) in ISO 8601 with its zone, or None when empty."""
    text = text.strip()
    return f"{text}:00+00:00" if len(text) == 16 else (f"{text}+00:00" if text else None)


def _field_errors(exc: ValidationError | DomainError) -> dict[str, str]:
    """Errors by form field, in the operator's language where the field is the form's."""
    raw = exc.messages if isinstance(exc, ValidationError) else (exc.errors or {})
    if isinstance(exc, DomainError) and not raw:
        raw = {"reason": [exc.message]}
    out: dict[str, str] = {}
    for name, problem in (raw.items() if isinstance(raw, dict) else []):
        field = str(name).split(".")[0]
        if field in ("scope", "jurisdictions") or isinstance(problem, dict):
            out[field] = gettext("Choose at least one valid entry.") if field != "scope" else \
                gettext("Choose the stores and categories involved.")
        else:
            out[field] = gettext("Check this field: %(why)s", why="; ".join(map(str, problem))
                                 if isinstance(problem, list) else str(problem))
    return out


def _refusal(exc: ValidationError | DomainError) -> tuple[int, dict[str, str]]:
    """A refused form's status and errors by field; any other failure (a 404, an outage) is not the form's."""
    if isinstance(exc, ValidationError):
        return 422, _field_errors(exc)
    if exc.status not in (409, 422):
        raise exc
    return exc.status, _field_errors(exc)


def _incident(session: Any, incident_id: str, lock: bool = False) -> Incident:
    incident = session.get(Incident, incident_id[:64], with_for_update=lock)
    if incident is None or not visible(incident.app_id):
        abort(404)
    return incident


# --- the register --------------------------------------------------------------------------------------------

def _scope_options() -> list[str]:
    return [f"{s.name}/{c}" for s in current_app.extensions["stores"] for c in s.describe().categories]


def _register(app_slug: str | None, *, status: int = 200, errors: dict[str, str] | None = None,
              values: dict[str, Any] | None = None) -> Any:
    number, overdue = page_number(), request.args.get("overdue") == "yes"
    now = utcnow()
    with _db().sessions() as session:
        apps = _apps(session)
        app = chosen_app(apps, app_slug)
        rows, total = cases.list_incidents(session, app.id, _table(), overdue=True if overdue else None,
                                           offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    for row in rows:
        pending = [o for o in row["obligations"] if o["applies"] and not o["done"] and o["due_at"] is not None]
        row["next_due"] = min((o["due_at"] for o in pending), default=None)
        row["left"] = time_left(row["next_due"], now)
    return page("console/incidents.html", status=status, apps=apps, app=app, rows=rows, total=total, number=number,
                pages=max(1, -(-total // PAGE_SIZE)), overdue=overdue, errors=errors or {}, values=values or {},
                scopes=_scope_options(), jurisdictions=_table().jurisdictions())


@blp.get("/incidents")
@require(READ)
def incidents_list() -> Any:
    return _register(request.args.get("app"))


@blp.post("/incidents")
@require(INCIDENTS)
def incident_create() -> Any:
    form = request.form
    values: dict[str, Any] = {k: form.get(k, "") for k in ("app", "title", "description", "discovered_at",
                                                           "occurred_from", "occurred_until", "severity")}
    values["scope"], values["jurisdictions"] = form.getlist("scope"), form.getlist("jurisdictions")
    raw: dict[str, Any] = {"title": values["title"].strip(),
                           "description": values["description"].replace("\r\n", "\n").strip(),
                           "discovered_at": _when(values["discovered_at"]), "severity": values["severity"] or None,
                           "occurred_from": _when(values["occurred_from"]),
                           "occurred_until": _when(values["occurred_until"]),
                           "scope": [dict(zip(("store", "category"), s.split("/", 1), strict=False))
                                     for s in values["scope"]],
                           "jurisdictions": values["jurisdictions"]}
    try:
        data = schemas.IncidentIn().load(raw)
        with _db().session() as session:
            app = chosen_app(_apps(session), values["app"])
            incident = cases.create(session, current_app.extensions["stores"], _table(), _actor(app.id), data)
            session.flush()
            incident_id = incident.id
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _register(values["app"], status=status, errors=errors, values=values)
    flash(gettext("The incident is open; its clocks run from the time of awareness."), "console")
    return redirect(url_for("console.incident_page", incident_id=incident_id), code=303)


# --- one incident --------------------------------------------------------------------------------------------

def _incident_page(incident_id: str, *, status: int = 200, errors: dict[str, str] | None = None,
                   values: dict[str, Any] | None = None, refused: str | None = None, form: str | None = None) -> Any:
    now = utcnow()
    with _db().sessions() as session:
        incident = _incident(session, incident_id)
        shown = cases.view(session, incident, _table(), now=now)
        runs = [assessment.run_view(session, r) for r in assessment.runs_of(session, incident.id)]
        made = campaigns.of(session, incident.id)
        sent = [campaigns.report(session, c) for c in made]
        previewed = next((c for c in made if c.dry_run), None)
        steps = cases.timeline(session, incident)
    if form != "campaign" and previewed is not None:  # send what was previewed without typing it again
        values = {f"{lang}_{part}": previewed.messages.get(lang, {}).get(part, "")
                  for lang in LANGUAGES for part in ("subject", "text")}
        values["per_minute"] = str(previewed.per_minute or "")
        form = "campaign"
    for o in shown["obligations"]:
        o["left"] = None if o["done"] or not o["applies"] else time_left(o["due_at"], now)
    running = any(r["state"] in ("queued", "running") for r in [*runs, *sent])
    return page("console/incident.html", status=status, incident=shown, runs=runs, timeline=steps, campaigns=sent,
                jurisdiction_options=[(j, j) for j in shown["jurisdictions"]],
                next_state=cases.NEXT.get(shown["state"]), needs=NEEDS, risks=RISKS, obligations=OBLIGATIONS,
                errors=errors or {}, values=values or {}, refused=refused, form=form, running=running)


@blp.get("/incidents/<incident_id>")
@require(READ)
def incident_page(incident_id: str) -> Any:
    return _incident_page(incident_id)


@blp.post("/incidents/<incident_id>/state")
@require(INCIDENTS)
def incident_advance(incident_id: str) -> Any:
    """The next state, with the reason and the facts it needs; refused when someone changed the incident since
    this page was loaded (its version), never a silent overwrite."""
    form = {k: request.form.get(k, "").replace("\r\n", "\n").strip()
            for k in ("state", "reason", "risk", "risk_reasoning", "root_cause", "measures", "version")}
    raw = {k: v for k, v in form.items() if v and k != "version"}
    try:
        data = schemas.IncidentPatch().load(raw)
        with _db().session() as session:
            incident = _incident(session, incident_id, lock=True)
            if str(incident.version) != form["version"]:
                return _incident_page(incident_id, status=409, values=form, form="state",
                                      refused=gettext("This incident changed since you opened this page. Reload "
                                                      "it and try again."))
            cases.update(session, current_app.extensions["runtime"], current_app.extensions["stores"], _table(),
                         _actor(incident.app_id), incident.id, data)
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _incident_page(incident_id, status=status, errors=errors, values=form, form="state")
    flash(gettext("The incident is now %(state)s.", state=data.get("state", "")), "console")
    return redirect(url_for("console.incident_page", incident_id=incident_id), code=303)


@blp.post("/incidents/<incident_id>/notifications")
@require(INCIDENTS)
def incident_notify(incident_id: str) -> Any:
    form = {k: request.form.get(k, "").replace("\r\n", "\n").strip()
            for k in ("jurisdiction", "obligation", "kind", "at", "reference", "notified_by", "reasoning")}
    raw: dict[str, Any] = {k: v for k, v in form.items() if v}
    raw["at"] = _when(form["at"])
    try:
        data = schemas.IncidentNotificationIn().load(raw)
        with _db().session() as session:
            incident = _incident(session, incident_id)
            cases.record_notification(session, _actor(incident.app_id), incident.id, data)
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _incident_page(incident_id, status=status, errors=errors, values=form, form="notify")
    flash(gettext("The notification is recorded."), "console")
    return redirect(url_for("console.incident_page", incident_id=incident_id), code=303)


@blp.post("/incidents/<incident_id>/assess")
@require(INCIDENTS)
def incident_assess(incident_id: str) -> Any:
    try:
        with _db().session() as session:
            incident = _incident(session, incident_id)
            run_id = assessment.request_run(session, incident, _actor(incident.app_id).name).id
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        return _incident_page(incident_id, status=exc.status, refused=gettext(
            "An assessment cannot start now: %(why)s", why=exc.message), form="assess")
    jobs.dispatch(current_app.extensions["queue"], run_id)
    flash(gettext("The assessment has started; this page shows its counts when it is done."), "console")
    return redirect(url_for("console.incident_page", incident_id=incident_id), code=303)


@blp.post("/incidents/<incident_id>/campaigns")
@require(INCIDENTS)
def incident_campaign(incident_id: str) -> Any:
    """Preview (a dry run: counts only) or send the notices to the people, as the API's campaigns: a real one
    needs a preview of the same text first."""
    form = {k: request.form.get(k, "").replace("\r\n", "\n").strip()
            for k in (*(f"{lang}_{part}" for lang in LANGUAGES for part in ("subject", "text")), "per_minute")}
    messages = {lang: {"subject": form[f"{lang}_subject"], "text": form[f"{lang}_text"]}
                for lang in LANGUAGES if form[f"{lang}_subject"] or form[f"{lang}_text"]}
    raw: dict[str, Any] = {"messages": messages, "dry_run": request.form.get("action") != "send"}
    if form["per_minute"]:
        raw["per_minute"] = form["per_minute"]
    try:
        data = schemas.IncidentCampaignIn().load(raw)
        with _db().session() as session:
            incident = _incident(session, incident_id)
            campaign_id = campaigns.create(session, incident, _actor(incident.app_id).name, data).id
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _incident_page(incident_id, status=status, errors=_campaign_errors(exc, errors), values=form,
                              form="campaign")
    jobs.dispatch_campaign(current_app.extensions["queue"], campaign_id)
    flash(gettext("The preview is counting the people it would reach.") if data["dry_run"] else
          gettext("The notices are being sent; this page shows the progress."), "console")
    return redirect(url_for("console.incident_page", incident_id=incident_id), code=303)


def _campaign_errors(exc: ValidationError | DomainError, errors: dict[str, str]) -> dict[str, str]:
    """The schema's and the service's fields onto the form's: each message's subject and text, the throttle, and
    what concerns the campaign as a whole (no assessment, no preview of this text, already sent)."""
    out: dict[str, str] = {}
    nested = exc.messages.get("messages") if isinstance(exc, ValidationError) else None
    if isinstance(nested, dict):
        for lang, parts in nested.items():
            parts = parts.get("value", parts) if isinstance(parts, dict) else {}  # marshmallow's Dict: per value
            for part, problem in parts.items():
                out[f"{lang}_{part}"] = gettext("Check this field: %(why)s", why="; ".join(map(str, problem)))
    elif nested is not None:
        out["en_subject"] = gettext("Write the notice in at least one language, with a subject and a text.")
    for name, problem in errors.items():
        if name == "per_minute":
            out[name] = problem
        elif name != "messages":
            out["campaign"] = problem
    return out


@blp.get("/incidents/<incident_id>/report")
@require(READ)
def incident_report(incident_id: str) -> Any:
    """The report to the authority as the API renders it, downloaded: a standalone document (HTML to print or
    send, with its own styles, or JSON to file), not a console page."""
    lang = "zh" if request.args.get("lang") == "zh" else "en"
    with _db().sessions() as session:
        incident = _incident(session, incident_id)
        content = report.content(session, current_app.extensions["runtime"], incident, _table(), lang)
    if request.args.get("format") == "json":
        body, mimetype, suffix = current_app.json.dumps(content), "application/json", "json"
    else:
        body, mimetype, suffix = report.html(content), "text/html", "html"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="incident-{incident_id}-report-{lang}.{suffix}"'})


@blp.get("/incidents/<incident_id>/record")
@require(READ)
def incident_record(incident_id: str) -> Any:
    with _db().sessions() as session:
        incident = _incident(session, incident_id)
        if incident.record is None:
            abort(404)
        token = incident.record
    return Response(token, mimetype="application/jose",
                    headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.jws"'})
