"""The request queue and a request's page: filters, pages and CSV of the queue; identity (for the roles that may
see it, each look audited), the timeline from the audit trail, the tasks, and the actions, each confirmed with a
reason and done through dsar.service as the API does. A form carries the request's marker: a request that
changed since the page was shown is not acted on ("reload")."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, stream_with_context, url_for
from flask_babel import gettext
from marshmallow import ValidationError
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from console import queue
from console.auth import IDENTITY, READ, REQUESTS, app_filter, can, require, visible
from console.models import Operator
from console.operators import actor as operator_actor
from console.web import blp, page, signed_in
from dsar import service as dsar
from dsar.deadlines import deadlines
from dsar.fields import contact_of, details_of, subject_of
from dsar.models import FINAL, MANUAL_TASK, STATES, TYPES, DsarRequest
from dsar.notify import request_link
from dsar.outbox import dispatch
from dsar.schemas import CodeIn, OptionalReasonIn
from dsar.states import tasks_of
from service import audit
from service.audit import AuditEvent
from service.errors import Conflict, DomainError, Invalid, Locked, TooManyRequests
from service.runtime import Runtime
from service.schemas import ReasonIn
from service.tenancy import App


def _rt() -> Runtime:
    return current_app.extensions["runtime"]


def _jurisdictions() -> list[str]:
    return sorted(deadlines(current_app.config["SETTINGS"].toml))


def words() -> dict[str, dict[str, str]]:
    """Names of states, types and actions in the operator's language."""
    return {
        "states": {
            "pending_verification": gettext("Awaiting verification"), "verified": gettext("Verified"),
            "in_progress": gettext("In progress"), "completed": gettext("Completed"),
            "partially_completed": gettext("Partially completed"), "rejected": gettext("Rejected"),
            "failed": gettext("Failed"), "cancelled": gettext("Cancelled"), "locked": gettext("Locked"),
        },
        "types": {
            "access": gettext("Access"), "portability": gettext("Portability"), "erasure": gettext("Erasure"),
            "rectification": gettext("Rectification"), "restriction": gettext("Restriction"),
            "objection": gettext("Objection"), "consent_withdrawal": gettext("Consent withdrawal"),
        },
        "tasks": {
            "pending": gettext("Pending"), "running": gettext("Running"), "done": gettext("Done"),
            "not_applicable": gettext("Nothing held"), "failed": gettext("Failed"),
        },
    }


# --- the queue ---------------------------------------------------------------------------------------------

def _filter_errors(errors: dict[str, str]) -> dict[str, str]:
    texts = {"choice": gettext("Choose one of the listed values."),
             "date": gettext("Enter a date as YYYY-MM-DD."), "number": gettext("Enter a page number.")}
    return {field: texts[code] for field, code in errors.items()}


def _apps(session: Session) -> list[Any]:
    stmt = select(App.id, App.slug, App.name).order_by(App.slug)
    limited = app_filter()
    if limited is not None:
        stmt = stmt.where(App.id.in_(limited))
    return list(session.execute(stmt))


@blp.get("/requests")
@require(READ)
def requests() -> Any:
    filters, errors = queue.parse(request.args, _jurisdictions())
    with _rt().db.sessions() as session:
        rows, total = queue.page(session, filters, app_filter())
        apps = _apps(session)
    pages = max(1, -(-total // filters.page_size))
    return page("console/requests.html", rows=rows, total=total, pages=pages, filters=filters,
                errors=_filter_errors(errors), apps=apps, states=STATES, types=TYPES,
                jurisdictions=_jurisdictions(), sorts=queue.SORTS, page_sizes=queue.PAGE_SIZES, words=words(),
                overdue=queue.overdue, status=422 if errors else 200)


@blp.get("/requests.csv")
@require(READ)
def requests_csv() -> Any:
    filters, errors = queue.parse(request.args, _jurisdictions())
    if errors:
        abort(400)
    who = signed_in()
    assert who is not None
    db = _rt().db
    with db.session() as session:
        audit.record(session, app_id=None, actor=operator_actor(who.id), action="console.requests_exported",
                     resource_type="dsar_request", resource_id="*",
                     details={"filters": filters.query_args(page=1, page_size=queue.PAGE_SIZES[0])})
    limited = app_filter()

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        with db.sessions() as session:
            for row in queue.csv_rows(session, filters, limited):
                writer.writerow(row)
                if out.tell() > 64 * 1024:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="requests.csv"'})


# --- one request -------------------------------------------------------------------------------------------

def _load(session: Session, request_id: str, *, lock: bool = False) -> DsarRequest:
    """The request, or 404 when it does not exist or belongs to an app the operator may not see."""
    if len(request_id) > 36:
        abort(404)
    stmt = select(DsarRequest).where(DsarRequest.id == request_id)
    req = session.scalar(stmt.with_for_update() if lock else stmt)
    if req is None or not visible(req.app_id):
        abort(404)
    return req


def marker(session: Session, req: DsarRequest) -> str:
    """A digest of everything an action depends on: it changes whenever the request or one of its tasks does."""
    def iso(value: Any) -> str:
        return value.isoformat() if value is not None else "-"

    parts = [req.status, iso(req.due_at), iso(req.extended_at), iso(req.verified_at), iso(req.closed_at),
             iso(req.lifted_at), str(req.code_attempts), json.dumps(req.code_resent_at or []),
             str(req.export_path is not None), str(req.certificate is not None)]
    parts += [f"{t.id}:{t.state}:{t.attempts}" for t in sorted(tasks_of(session, req.id), key=lambda t: t.id)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Step:
    at: Any
    actor: str
    action: str
    details: dict[str, Any]


def timeline(session: Session, req: DsarRequest) -> list[Step]:
    """The request's audit entries and its tasks', oldest first; operators named by email."""
    task_ids = [t.id for t in tasks_of(session, req.id)]
    mine = and_(AuditEvent.resource_type == "dsar_request", AuditEvent.resource_id == req.id)
    if task_ids:
        mine = or_(mine, and_(AuditEvent.resource_type == "dsar_task", AuditEvent.resource_id.in_(task_ids)))
    events = list(session.scalars(select(AuditEvent).where(mine).order_by(AuditEvent.at, AuditEvent.id)))
    ids = {int(e.actor.split(":", 1)[1]) for e in events
           if e.actor.startswith("operator:") and e.actor.split(":", 1)[1].isdigit()}
    emails = dict(session.execute(select(Operator.id, Operator.email).where(Operator.id.in_(ids))).all()) \
        if ids else {}
    steps = []
    for e in events:
        name = e.actor
        if name.startswith("operator:") and name.split(":", 1)[1].isdigit():
            name = emails.get(int(name.split(":", 1)[1]), name)
        shown = {k: v for k, v in (e.details or {}).items() if k in ("reason", "from", "to", "store", "attempt",
                                                                      "action", "stores")}
        steps.append(Step(e.at, name, e.action, shown))
    return steps


@dataclass(frozen=True)
class Action:
    """An operator action on a request: its reason rule (the API's schema, or none) and when it applies."""

    name: str
    title: Callable[[], str]
    reason: str  # "required" (ReasonIn), "optional" (OptionalReasonIn) or "note" (kept in the console's entry)
    applies: Callable[[dict[str, Any]], bool]
    code: bool = False


def _open(v: dict[str, Any]) -> bool:
    return v["status"] not in FINAL


ACTIONS = {a.name: a for a in (
    Action("verify", lambda: gettext("Verify with the requester's code"), "note",
           lambda v: v["status"] == "pending_verification", code=True),
    Action("resend", lambda: gettext("Send a new code"), "note", lambda v: v["status"] == "pending_verification"),
    Action("extend", lambda: gettext("Extend the deadline"), "required",
           lambda v: _open(v) and not v["extended"]),
    Action("reject", lambda: gettext("Reject"), "required", _open),
    Action("cancel", lambda: gettext("Cancel"), "optional",
           lambda v: v["status"] in ("pending_verification", "verified", "locked")),
    Action("retry", lambda: gettext("Retry the failed tasks"), "note",
           lambda v: any(t["state"] == "failed" for t in v["tasks"])),
    Action("complete", lambda: gettext("Mark the manual task done"), "required",
           lambda v: v["status"] == "in_progress" and any(t["store"] == MANUAL_TASK and t["state"] == "pending"
                                                           for t in v["tasks"])),
    Action("lift", lambda: gettext("Lift the restriction or objection"), "required",
           lambda v: v["type"] in dsar.FLAG_TYPES and v["status"] in ("in_progress", "completed")
           and v["lifted_at"] is None),
    Action("export-link", lambda: gettext("Give the requester a new download link"), "note",
           lambda v: v["export_ready"]),
)}


@blp.get("/requests/<request_id>")
@require(READ)
def request_detail(request_id: str) -> Any:
    with _rt().db.sessions() as session:
        req = _load(session, request_id)
        shown, steps, mark = dsar.view(session, req), timeline(session, req), marker(session, req)
        slug = session.scalar(select(App.slug).where(App.id == req.app_id))
    actions = [a for a in ACTIONS.values() if a.applies(shown)] if can(REQUESTS) else []
    return page("console/request.html", req=shown, app_slug=slug, steps=steps, marker=mark, actions=actions,
                words=words(), can_see_identity=can(IDENTITY), manual=MANUAL_TASK)


@blp.get("/requests/<request_id>/identity")
@require(IDENTITY)
def identity(request_id: str) -> Any:
    """The requester's identity, contact and details, decrypted: each look is in the audit trail."""
    rt, who = _rt(), signed_in()
    assert who is not None
    with rt.db.session() as session:
        req = _load(session, request_id)
        subject, contact, details = subject_of(rt, req), contact_of(rt, req), details_of(rt, req)
        audit.record(session, app_id=req.app_id, actor=operator_actor(who.id), action="console.identity_viewed",
                     resource_type="dsar_request", resource_id=req.id)
    return page("console/identity.html", request_id=request_id, subject=subject, contact=contact,
                details=details)


@blp.get("/requests/<request_id>/certificate")
@require(READ)
def certificate(request_id: str) -> Any:
    """The signed erasure certificate (a compact JWS; verify it with /.well-known/jwks.json)."""
    who = signed_in()
    assert who is not None
    with _rt().db.session() as session:
        req = _load(session, request_id)
        if not req.certificate:
            abort(404)
        audit.record(session, app_id=req.app_id, actor=operator_actor(who.id),
                     action="console.certificate_downloaded", resource_type="dsar_request", resource_id=req.id)
        token = req.certificate
    return Response(token, mimetype="application/jose", headers={
        "Content-Disposition": f'attachment; filename="erasure-certificate-{request_id}.jws"'})


def _action(name: str) -> Action:
    found = ACTIONS.get(name)
    if found is None:
        abort(404)
    return found


def _confirm(request_id: str, action: Action, mark: str, *, status: int = 200, errors: dict[str, str] | None = None,
             values: dict[str, str] | None = None, changed: bool = False, service_error: str | None = None) -> Any:
    return page("console/confirm.html", status=status, request_id=request_id, action=action, marker=mark,
                errors=errors or {}, values=values or {}, changed=changed, service_error=service_error)


@blp.get("/requests/<request_id>/<name>")
@require(REQUESTS)
def confirm(request_id: str, name: str) -> Any:
    action = _action(name)
    with _rt().db.sessions() as session:
        req = _load(session, request_id)
        current = marker(session, req)
    shown = request.args.get("marker") or current
    return _confirm(request_id, action, shown, changed=shown != current)


def _form_errors(action: Action, form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form checked with the API's own schemas; errors in the operator's language, per field."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    reason = form.get("reason", "").replace("\r\n", "\n").strip()
    schema = {"required": ReasonIn(), "optional": OptionalReasonIn(), "note": OptionalReasonIn()}[action.reason]
    try:
        data.update(schema.load({"reason": reason or None} if action.reason != "required" else {"reason": reason}))
    except ValidationError:
        errors["reason"] = gettext("Give a reason of 3 to 2,000 characters, without control characters.") \
            if action.reason == "required" else gettext("A reason may hold at most 2,000 characters, without "
                                                         "control characters.")
    if action.code:
        try:
            data.update(CodeIn().load({"code": form.get("code", "").strip()}))
        except ValidationError:
            errors["code"] = gettext("Enter the 6 digits of the code the requester received.")
    return data, errors


def _service_error(exc: DomainError) -> str:
    if isinstance(exc, Locked):
        return gettext("Too many wrong codes: the request is now locked.")
    if isinstance(exc, TooManyRequests):
        return gettext("Too many codes were sent for this request in the last hour. Try again later.")
    if isinstance(exc, Invalid) and exc.errors and "code" in exc.errors:
        return gettext("The code is not right.")
    return gettext("This cannot be done now: %(why)s", why=exc.message)


@blp.post("/requests/<request_id>/<name>")
@require(REQUESTS)
def act(request_id: str, name: str) -> Any:
    action = _action(name)
    rt, who = _rt(), signed_in()
    assert who is not None
    form = {k: request.form.get(k, "") for k in ("reason", "code", "marker")}
    data, errors = _form_errors(action, form)
    if errors:
        return _confirm(request_id, action, form["marker"], status=422, errors=errors, values=form)
    link: str | None = None
    refused: DomainError | None = None
    try:
        with rt.db.session() as session:
            req = _load(session, request_id, lock=True)
            if marker(session, req) != form["marker"]:
                return _confirm(request_id, action, form["marker"], status=409, values=form, changed=True)
            actor = dsar.Actor(app_id=req.app_id, name=operator_actor(who.id))
            reason = data.get("reason")
            refused, link = _perform(session, rt, actor, action.name, req, data)
            if action.reason == "note" and reason:  # the API takes no reason here: the console keeps it
                audit.record(session, app_id=req.app_id, actor=actor.name, action="console.request_action",
                             resource_type="dsar_request", resource_id=req.id,
                             details={"action": action.name, "reason": reason})
    except DomainError as exc:  # rolled back: nothing was done
        return _confirm(request_id, action, form["marker"], status=exc.status, values=form,
                        service_error=_service_error(exc))
    if refused is not None:  # committed first (a wrong code counts), then answered
        with rt.db.sessions() as session:
            mark = marker(session, _load(session, request_id))
        return _confirm(request_id, action, mark, status=refused.status, values={**form, "code": ""},
                        service_error=_service_error(refused))
    if action.name in ("verify", "retry"):
        dispatch(rt)  # the outbox rows are committed; hand them to the queue as the API does
    if link is not None:
        return page("console/link.html", request_id=request_id, link=link)
    flash(gettext("Done: %(action)s.", action=action.title()), "console")
    return redirect(url_for("console.request_detail", request_id=request_id), code=303)


def _perform(session: Session, rt: Runtime, actor: dsar.Actor, name: str, req: DsarRequest,
             data: dict[str, Any]) -> tuple[DomainError | None, str | None]:
    """Do `name` through dsar.service; (an error to answer after the commit, a link to show once)."""
    reason = data.get("reason")
    if name == "verify":
        return dsar.verify(session, rt, actor, req.id, data["code"]), None
    if name == "resend":
        dsar.resend_code(session, rt, actor, req.id)
    elif name == "extend":
        dsar.extend(session, rt, actor, req.id, reason)
    elif name == "reject":
        dsar.reject(session, rt, actor, req.id, reason)
    elif name == "cancel":
        dsar.cancel(session, actor, req.id, reason)
    elif name == "retry":
        dsar.retry_failed(session, actor, req.id)
    elif name == "complete":
        dsar.complete_manual(session, rt, actor, req.id, reason)
    elif name == "lift":
        dsar.lift(session, rt, actor, req.id, reason)
    elif name == "export-link":
        if req.export_path is None:
            raise Conflict("no export is ready for this request")
        link, _ = request_link(session, rt, req)
        audit.record(session, app_id=req.app_id, actor=actor.name, action="console.requester_link_issued",
                     resource_type="dsar_request", resource_id=req.id)
        return None, link
    return None, None
