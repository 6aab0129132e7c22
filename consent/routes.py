"""HTTP routes of the consent API (thin: validation by schemas, logic in the consent modules beside this one)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest.pagination import Page, PaginationParameters

from consent import history, policies, record, schemas, status, verifications
from consent.cache import PolicyCache
from consent.context import Context
from consent.views import current_version
from service.api import ApiBlueprint, link, links
from service.auth import current_principal, require_scope
from service.db import utcnow

policy_blp = ApiBlueprint("policies", __name__, url_prefix="/v1", description="Privacy policies and versions")
blp = ApiBlueprint("consents", __name__, url_prefix="/v1",
                   description="Consent records, status and receipts; the ledger's verifications")


def _ctx() -> Context:
    return Context(principal=current_principal(), keys=current_app.extensions["keys"],
                   settings=current_app.config["SETTINGS"], locations=current_app.extensions["stores"].locations())


def _db() -> Any:
    return current_app.extensions["db"]


def _cache() -> PolicyCache:
    return current_app.extensions["policy_cache"]  # created by consent.fastpath.install


def _policy_out(policy: Any) -> dict[str, Any]:
    current = current_version(policy.versions, utcnow())
    return {"key": policy.key, "title": policy.title, "purposes": policy.purposes,
            "current_version": current.version if current else None, "created_at": policy.created_at}


@policy_blp.post("/policies")
@require_scope("admin")
@policy_blp.arguments(schemas.PolicyIn)
@policy_blp.response(201, schemas.PolicyOut)
@policy_blp.doc(**links(201, status=link("get", "/v1/consents/status", "Whether a subject must consent to it",
                                         parameters={"query.policy": "$response.body#/key"})))
def create_policy(data: dict[str, Any]) -> Any:
    """Create a privacy policy with its purposes."""
    with _db().session() as session:
        return _policy_out(policies.create_policy(session, _ctx(), data))


@policy_blp.get("/policies")
@require_scope("consent:read")
@policy_blp.response(200, schemas.PolicyOut(many=True))
@policy_blp.paginate()
def list_policies(pagination_parameters: PaginationParameters) -> Any:
    """The app's policies, by key."""
    with _db().session() as session:
        # An app has a handful of policies: page the list, then load the versions of that page only.
        page = Page(policies.list_policies(session, current_principal().app_id), pagination_parameters).items
        return [_policy_out(p) for p in page]


@policy_blp.get("/policies/<key>")
@require_scope("consent:read")
@policy_blp.response(200, schemas.PolicyOut)
@policy_blp.doc(**links(
    200,
    record=link("post", "/v1/consents", "Record a consent to its current version",
                body={"policy": "$response.body#/key", "version": "$response.body#/current_version"}),
    status=link("get", "/v1/consents/status", "Whether a subject must consent to it",
                parameters={"query.policy": "$response.body#/key"})))
def get_policy(key: str) -> Any:
    """One policy with its purposes and current version."""
    with _db().session() as session:
        return _policy_out(policies.get_policy(session, current_principal().app_id, key))


@policy_blp.post("/policies/<key>/versions")
@require_scope("admin")
@policy_blp.arguments(schemas.VersionIn)
@policy_blp.response(201, schemas.VersionOut)
@policy_blp.doc(**links(201, record=link("post", "/v1/consents", "Record a consent to this version",
                                         body={"policy": "$request.path.key", "version": "$response.body#/version"})))
def add_version(data: dict[str, Any], key: str) -> Any:
    """Publish a version. A material version requires fresh consent once it takes effect."""
    with _db().session() as session:
        version = policies.add_version(session, _ctx(), key, data)
    _cache().invalidate(current_principal().app_id, key)
    return version


@policy_blp.get("/policies/<key>/versions")
@require_scope("consent:read")
@policy_blp.response(200, schemas.VersionOut(many=True))
def list_versions(key: str) -> Any:
    """The policy's versions, newest first."""
    with _db().session() as session:
        return list(reversed(policies.get_policy(session, current_principal().app_id, key).versions))


@blp.post("/consents")
@require_scope("consent:write")
@blp.arguments(schemas.ConsentIn())  # instances: a class is re-instantiated per request
@blp.response(201, schemas.ConsentOut)
@blp.alt_response(409, description="Not the current version; `detail.current_version` names it")
@blp.doc(**links(
    201,
    status=link("get", "/v1/consents/status", "The subject's status under this policy",
                parameters={"query.subject_id": "$request.body#/subject_id", "query.policy": "$response.body#/policy"}),
    history=link("get", "/v1/subjects/{subject_id}/consents", "The subject's history, this consent first",
                 parameters={"path.subject_id": "$request.body#/subject_id", "query.policy": "$response.body#/policy"}),
    withdraw=link("post", "/v1/consents/withdraw", "Withdraw what the subject consented to",
                  body={"subject_id": "$request.body#/subject_id", "policy": "$response.body#/policy"})))
def record_consent(data: dict[str, Any]) -> Any:
    """Record a subject's consent to the current policy version, per purpose; returns a signed receipt.

    A `Sec-GPC: 1` header (or `gpc: true`) records purposes that honour GPC as denied.
    """
    # Commits on its own (the ledger's write): no unit of work to open here.
    event = record.record_consent(_db(), _ctx(), data, request.headers.get("Sec-GPC") == "1", _cache())
    return {"id": event.id, "kind": event.kind, "policy": data["policy"], "version": data["version"],
            "purposes": event.purposes, "gpc": event.gpc, "created_at": event.created_at, "receipt": event.receipt}


@blp.get("/consents/status")
@require_scope("consent:read")
@blp.arguments(schemas.StatusQuery(), location="query")  # an instance: a class is re-instantiated per request
@blp.response(200, schemas.StatusOut)
@blp.doc(**links(200, record=link(
    "post", "/v1/consents", "Record the subject's consent to the current version, with the answers it holds",
    body={"subject_id": "$request.query.subject_id", "policy": "$request.query.policy",
          "version": "$response.body#/current_version", "purposes": "$response.body#/purposes"})))
def consent_status(args: dict[str, Any]) -> Any:
    """Does this subject need to accept the current policy? Call it at app start.

    Most calls are answered by consent.fastpath beneath Flask with the same body; this route answers the rest.
    """
    with _db().autocommit() as reader:
        return status.status_raw(reader, _ctx(), _cache(), args["subject_id"], args["policy"])


@blp.post("/consents/withdraw")
@require_scope("consent:write")
@blp.arguments(schemas.WithdrawIn())
@blp.response(200, schemas.WithdrawOut)
@blp.doc(**links(
    200,
    status=link("get", "/v1/consents/status", "The subject's status after the withdrawal",
                parameters={"query.subject_id": "$request.body#/subject_id", "query.policy": "$request.body#/policy"}),
    history=link("get", "/v1/subjects/{subject_id}/consents", "The subject's history, this withdrawal first",
                 parameters={"path.subject_id": "$request.body#/subject_id", "query.policy": "$request.body#/policy"})))
def withdraw(data: dict[str, Any]) -> Any:
    """Withdraw consent for some purposes, or all when `purposes` is absent; returns a signed receipt."""
    ctx = _ctx()
    event = record.withdraw(_db(), ctx, data, _cache())  # commits on its own (the ledger's write)
    with _db().session() as session:
        state = status.status(session, ctx, _cache(), data["subject_id"], data["policy"])
    return {**state, "id": event.id, "created_at": event.created_at, "receipt": event.receipt}


@blp.get("/subjects/<subject_id>/consents")
@require_scope("consent:read")
@blp.arguments(schemas.HistoryQuery(), location="query")
@blp.response(200, schemas.HistoryItem(many=True))
@blp.paginate()
def consent_history(args: dict[str, Any], subject_id: str, pagination_parameters: PaginationParameters) -> Any:
    """The subject's consent history, newest first."""
    with _db().session() as session:
        items, total = history.history(session, _ctx(), subject_id, args["policy"],
                                       pagination_parameters.first_item, pagination_parameters.page_size)
    pagination_parameters.item_count = total
    return items


@blp.get("/ledger/verifications")
@require_scope("admin")
@blp.response(200, schemas.VerificationOut(many=True))
@blp.paginate()
def ledger_verifications(pagination_parameters: PaginationParameters) -> Any:
    """Runs of the ledger check (scheduled daily, or `flask ledger verify`), newest first.

    The ledger is one for every app, so every app's admin sees every run's status and counts; which event broke
    is shown to the app whose record it is, and to keys with `platform:read`.
    """
    principal = current_principal()
    platform = principal.has("platform:read")
    with _db().session() as session:
        rows, total = verifications.page(session, pagination_parameters.first_item, pagination_parameters.page_size)
    pagination_parameters.item_count = total
    return [_verification_out(row, platform or row.first_break_app_id == principal.app_id, platform)
            for row in rows]


def _verification_out(row: Any, named: bool, platform: bool) -> dict[str, Any]:
    first = {"event": row.first_break, "problem": row.first_break_problem} if row.first_break and named else None
    return {"id": row.id, "status": row.status, "mode": row.mode, "trigger": row.trigger,
            "started_at": row.started_at, "finished_at": row.finished_at, "events_checked": row.events_checked,
            "chains_checked": row.chains_checked, "events_covered": row.events_covered, "breaks": row.breaks,
            "first_break": first, "compared_with": row.base_id, "checkpoint": row.checkpoint if platform else None,
            "error": row.error}
