"""Retention in the console: the policies (create, a new version by editing, disable or enable), a dry-run
preview of what would be destroyed per store and category, a real run started only from a finished preview
(same cutoffs), runs with their progress (the page reloads itself while a run is live: no script), reports and
the signed certificates. Everything goes through retention.policies and retention.runs as the API does.
Retention spans every app's data, so acting on it takes the `retention` role without an app limit."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError
from sqlalchemy import select

from console.auth import READ, RETENTION, app_filter, require
from console.operators import actor as operator_actor
from console.web import blp, page, page_number, signed_in
from retention import jobs, policies, runs
from retention.certificates import certificate_of
from retention.leases import LIVE_STATES
from retention.models import ACTIONS, RetentionRun
from retention.schemas import RetentionPolicyIn, RetentionPolicyUpdate, RetentionRunOut
from retention.views import policy_view
from service import audit
from service.errors import DomainError, NotFound

RUNS_PAGE = 20
FIELD_TEXTS = {
    "key": lambda: gettext("Use 1 to 100 lowercase letters, digits, '_', '.' or '-'."),
    "store": lambda: gettext("Choose one of the listed values."),
    "category": lambda: gettext("Choose a category the store holds."),
    "retain_for": lambda: gettext("Enter an ISO 8601 duration such as P180D, P7Y or P1Y6M."),
    "action": lambda: gettext("Choose one of the listed values."),
    "basis": lambda: gettext("Say why this period: the purpose or the law (at most 2,000 characters)."),
    "schedule": lambda: gettext("Enter a cron expression in UTC (5 fields) or @daily."),
}


def states() -> dict[str, str]:
    """Run and step states in the operator's language."""
    return {"queued": gettext("Queued"), "running": gettext("Running"), "succeeded": gettext("Succeeded"),
            "failed": gettext("Failed"), "pending": gettext("Pending"), "done": gettext("Done"),
            "held": gettext("Held"), "skipped": gettext("Skipped")}


def _db() -> Any:
    return current_app.extensions["db"]


def _actor() -> policies.Actor:
    who = signed_in()
    assert who is not None
    if app_filter() is not None:
        abort(403)  # retention reaches every app's data: not for an operator limited to some apps
    return policies.Actor(operator_actor(who.id), None)


def _field_errors(exc: DomainError | ValidationError) -> dict[str, str]:
    fields = exc.messages if isinstance(exc, ValidationError) else (exc.errors or {})
    out = {k: FIELD_TEXTS[k]() for k in (fields if isinstance(fields, dict) else {}) if k in FIELD_TEXTS}
    if isinstance(exc, DomainError) and not out:
        out["key"] = gettext("This cannot be done now: %(why)s", why=exc.message)
    return out


def _targets() -> list[tuple[str, str]]:
    return [(s.describe().name, c) for s in current_app.extensions["stores"] for c in s.describe().categories]


def _overview(status: int = 200, errors: dict[str, str] | None = None, values: dict[str, str] | None = None) -> Any:
    number = page_number()
    with _db().sessions() as session:
        rows = [policy_view(session, p) for p in policies.list_policies(session)]
        items, total = runs.list_runs(session, offset=(number - 1) * RUNS_PAGE, limit=RUNS_PAGE)
        shown = [runs.report(session, r, batches=False) for r in items]
    return page("console/retention.html", status=status, policies=rows, runs=shown, number=number,
                pages=max(1, -(-total // RUNS_PAGE)), targets=_targets(), actions=ACTIONS, errors=errors or {},
                states=states(),
                values=values or {"retain_for": "", "schedule": "@daily"})


@blp.get("/retention")
@require(READ)
def retention_page() -> Any:
    return _overview()


def _form(names: tuple[str, ...]) -> dict[str, str]:
    return {k: request.form.get(k, "").replace("\r\n", "\n").strip() for k in names}


@blp.post("/retention/policies")
@require(RETENTION)
def policy_create() -> Any:
    form = _form(("key", "target", "retain_for", "action", "basis", "schedule"))
    store, _, category = form["target"].partition("/")
    given = {**{k: form[k] for k in ("key", "retain_for", "action", "basis", "schedule")}, "store": store,
             "category": category}
    raw = {k: v for k, v in given.items() if v}
    actor = _actor()
    try:
        data = RetentionPolicyIn().load(raw)
        with _db().session() as session:
            policy = policies.create_policy(session, current_app.extensions["stores"], actor, data)
            key = policy.key
    except (ValidationError, DomainError) as exc:
        errors = _field_errors(exc)
        if "store" in errors or "category" in errors:
            errors = {**errors, "target": errors.pop("store", None) or errors.pop("category")}
        return _overview(422 if isinstance(exc, ValidationError) else exc.status, errors, form)
    flash(gettext("Policy %(key)s created.", key=key), "console")
    return redirect(url_for("console.policy_page", key=key), code=303)


def _policy_page(key: str, status: int = 200, errors: dict[str, str] | None = None,
                 values: dict[str, str] | None = None, changed: bool = False) -> Any:
    with _db().sessions() as session:
        try:
            policy = policies.get_policy(session, key[:100])
        except NotFound:
            abort(404)
        shown = policy_view(session, policy)
        history = policies.versions(session, policy.key)
    return page("console/policy.html", status=status, policy=shown, versions=history, actions=ACTIONS,
                errors=errors or {}, values=values or shown, changed=changed)


@blp.get("/retention/policies/<key>")
@require(READ)
def policy_page(key: str) -> Any:
    return _policy_page(key)


@blp.post("/retention/policies/<key>")
@require(RETENTION)
def policy_edit(key: str) -> Any:
    """A new version of the policy; refused when someone else made one since the form was shown."""
    form = _form(("retain_for", "action", "basis", "schedule", "version"))
    actor = _actor()
    try:
        data = RetentionPolicyUpdate().load({k: form[k] for k in ("retain_for", "action", "basis", "schedule")
                                             if form[k]})
        with _db().session() as session:
            policy = policies.get_policy(session, key[:100])
            if str(policy.version) != form["version"]:
                return _policy_page(key, 409, values=form, changed=True)
            policy, changed = policies.update_policy(session, current_app.extensions["stores"], actor, key, data)
            version = policy.version
    except NotFound:
        abort(404)
    except (ValidationError, DomainError) as exc:
        return _policy_page(key, 422 if isinstance(exc, ValidationError) else exc.status, _field_errors(exc), form)
    flash(gettext("Version %(version)s of the policy is in force.", version=version) if changed
          else gettext("Nothing changed."), "console")
    return redirect(url_for("console.policy_page", key=key), code=303)


@blp.post("/retention/policies/<key>/enabled")
@require(RETENTION)
def policy_enabled(key: str) -> Any:
    form = _form(("enabled", "version", "reason"))
    actor = _actor()
    try:
        with _db().session() as session:
            policy = policies.get_policy(session, key[:100])
            if str(policy.version) != form["version"]:
                return _policy_page(key, 409, changed=True)
            policies.set_enabled(session, actor, key, form["enabled"] == "yes")
            if form["reason"]:
                audit.record(session, app_id=None, actor=actor.name, action="console.retention_action",
                             resource_type="retention_policy", resource_id=key,
                             details={"action": "enable" if form["enabled"] == "yes" else "disable",
                                      "reason": form["reason"][:2000]})
    except NotFound:
        abort(404)
    except DomainError as exc:
        return _policy_page(key, exc.status, errors={"enabled": gettext("This cannot be done now: %(why)s",
                                                                        why=exc.message)})
    flash(gettext("The policy is enabled.") if form["enabled"] == "yes" else gettext("The policy is disabled."),
          "console")
    return redirect(url_for("console.policy_page", key=key), code=303)


@blp.post("/retention/runs")
@require(RETENTION)
def run_start() -> Any:
    """A preview (dry run) of one policy or of all; or, from a finished preview, the real run with its cutoffs."""
    form = _form(("policy", "from_dry_run"))
    actor = _actor()
    try:
        run_id, created = runs.request_run(_db(), actor, policy_key=form["policy"] or None,
                                           dry_run=not form["from_dry_run"], trigger="api",
                                           from_dry_run=form["from_dry_run"] or None)
    except DomainError as exc:
        flash(gettext("This cannot be done now: %(why)s", why=exc.message), "console")
        return redirect(url_for("console.retention_page"), code=303)
    if created:
        jobs.dispatch(current_app.extensions["queue"], run_id)
    return redirect(url_for("console.run_page", run_id=run_id), code=303)


@blp.get("/retention/runs/<run_id>")
@require(READ)
def run_page(run_id: str) -> Any:
    with _db().sessions() as session:
        try:
            run = runs.get_run(session, run_id[:36])
        except NotFound:
            abort(404)
        shown = runs.report(session, run, batches=False)
        followed = session.scalar(select(RetentionRun.id).where(
            RetentionRun.source_run_id == run.id)) if run.dry_run else None
    live = shown["state"] in LIVE_STATES
    return page("console/run.html", run=shown, live=live, followed=followed, states=states())


@blp.get("/retention/runs/<run_id>/certificate")
@require(READ)
def run_certificate(run_id: str) -> Any:
    """The signed destruction certificate (a compact JWS; verify it with /.well-known/jwks.json)."""
    who = signed_in()
    assert who is not None
    with _db().session() as session:
        try:
            run = certificate_of(session, run_id[:36])
        except DomainError:
            abort(404)
        audit.record(session, app_id=None, actor=operator_actor(who.id), action="console.certificate_downloaded",
                     resource_type="retention_run", resource_id=run.id)
        token = run.certificate
    return Response(token, mimetype="application/jose", headers={
        "Content-Disposition": f'attachment; filename="retention-{run_id}.jws"'})


@blp.post("/retention/runs/<run_id>/retry")
@require(RETENTION)
def run_retry(run_id: str) -> Any:
    """Continue a failed or interrupted run from its last committed batch (same cutoffs), as the API does."""
    actor = _actor()
    try:
        with _db().session() as session:
            runs.retry_run(session, actor, run_id[:36])
    except NotFound:
        abort(404)
    except DomainError as exc:  # succeeded, or being executed meanwhile: said, nothing changed
        flash(gettext("This cannot be done now: %(why)s", why=exc.message), "console")
        return redirect(url_for("console.run_page", run_id=run_id), code=303)
    jobs.dispatch(current_app.extensions["queue"], run_id)
    return redirect(url_for("console.run_page", run_id=run_id), code=303)


@blp.get("/retention/runs/<run_id>/report.json")
@require(READ)
def run_report(run_id: str) -> Any:
    """The run's report as the API answers it (per step the cutoff, batches, skips by hold, counts)."""
    with _db().sessions() as session:
        try:
            run = runs.get_run(session, run_id[:36])
        except NotFound:
            abort(404)
        body = RetentionRunOut().dumps(runs.report(session, run))
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="retention-{run.id}.json"'})
