"""HTTP routes of rights requests (thin: logic in dsar.service)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, stream_with_context
from flask_smorest.pagination import PaginationParameters

from dsar import schemas
from dsar import service as dsar
from dsar.agents.status import sync_dirty
from dsar.config import options
from dsar.deadlines import deadlines
from dsar.exports import decrypt_chunks
from dsar.outbox import dispatch
from service.api import ApiBlueprint, link, links
from service.auth import current_principal, require_scope
from service.config import ConfigError
from service.idempotency import claim, idempotent
from service.runtime import Runtime
from service.schemas import ReasonIn

blp = ApiBlueprint("requests", __name__, url_prefix="/v1", description="Data-subject rights requests")


def _rt() -> Runtime:
    return current_app.extensions["runtime"]


def _actor() -> dsar.Actor:
    p = current_principal()
    return dsar.Actor(app_id=p.app_id, name=f"key:{p.key_id}")


def _view(request_id: str) -> dict[str, Any]:
    with _rt().db.session() as session:
        return dsar.view(session, dsar.get_request(session, current_principal().app_id, request_id))


def _after_commit(request_id: str) -> dict[str, Any]:
    # The outbox rows are committed with the change; now hand them to the queue (in-process: run them). Rows a
    # crash, or a queue that is down, leaves behind are sent by the maintenance pass: dispatch never turns the
    # saved change into an error.
    dispatch(_rt())
    return _view(request_id)


@blp.record_once
def _check_config(state: Any) -> None:
    """Refuse to start on a bad `[dsar]` section or deadlines table rather than fail in a worker later."""
    settings = state.app.config["SETTINGS"]
    unknown = sorted(set(options(settings).bulk_stores) - {s.name for s in state.app.extensions["stores"].stores()})
    if unknown:  # a misspelt name would send nothing to the bulk queue, silently
        raise ConfigError(f"PRIVACY_CONFIG [dsar].bulk_stores: no such store(s) {unknown}")
    deadlines(settings.toml)


# Where a request's id is used next (from its submission or any answer about it).
_ID = {"path.request_id": "$response.body#/id"}
REQUEST_LINKS = {
    "get": link("get", "/v1/requests/{request_id}", "The request's state and deadlines", parameters=_ID),
    "verify": link("post", "/v1/requests/{request_id}/verify", "Verify it with the code sent", parameters=_ID),
    "cancel": link("post", "/v1/requests/{request_id}/cancel", "Cancel it", parameters=_ID),
    "extend": link("post", "/v1/requests/{request_id}/extend", "Extend its deadline", parameters=_ID),
    "processors": link("get", "/v1/requests/{request_id}/processors", "Its erasure notices to processors",
                       parameters=_ID),
    "export_token": link("post", "/v1/requests/{request_id}/export-token", "A download link for its export",
                         parameters=_ID),
}


def _replay(request_id: str) -> tuple[Any, int]:
    return schemas.RequestOut().dump(_view(request_id)), 202


@blp.post("/requests")
@require_scope("dsar:submit")
@idempotent(_replay)
@blp.arguments(schemas.RequestIn)
@blp.response(202, schemas.RequestOut)
@blp.doc(**links(202, **REQUEST_LINKS))
def submit(data: dict[str, Any]) -> Any:
    """Submit a request. Unless a dsar:manage key marks it verified, a one-time code goes to contact_email.

    Answers 202 once the request is saved, even when the queue cannot take its jobs now (the maintenance pass
    dispatches them). With an `Idempotency-Key`, a retry answers the first result and creates nothing."""
    with _rt().db.session() as session:
        req = dsar.submit(session, _rt(), _actor(), data, can_verify=current_principal().has("dsar:manage"))
        request_id = req.id
        claim(session, request_id)
    return _after_commit(request_id)


@blp.get("/requests/<request_id>")
@require_scope("dsar:submit")
@blp.response(200, schemas.RequestOut)
@blp.doc(**links(200, **{k: v for k, v in REQUEST_LINKS.items() if k != "get"}))
def get(request_id: str) -> Any:
    """State, due date, and one task per store with its state, attempts, counts and last error."""
    return _view(request_id)


@blp.get("/requests")
@require_scope("dsar:manage")
@blp.arguments(schemas.RequestQuery, location="query")
@blp.response(200, schemas.RequestOut(many=True))
@blp.paginate()
def list_requests(args: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
    """The app's requests by due date; filter by status, type, overdue."""
    with _rt().db.session() as session:
        rows, total = dsar.list_requests(session, current_principal().app_id, status=args["status"],
                                         type_=args["type"], overdue=args["overdue"],
                                         offset=pagination_parameters.first_item,
                                         limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return [dsar.view(session, r) for r in rows]


@blp.post("/requests/<request_id>/verify")
@require_scope("dsar:submit")
@blp.arguments(schemas.CodeIn)
@blp.response(200, schemas.RequestOut)
def verify(data: dict[str, Any], request_id: str) -> Any:
    """Verify the subject with the one-time code; 5 wrong codes lock the request."""
    with _rt().db.session() as session:
        refused = dsar.verify(session, _rt(), _actor(), request_id, data["code"])
    if refused is not None:
        sync_dirty(_rt())  # a request locked by this guess: the agent that made it, if any, is told
        raise refused  # after the commit: the wrong guess stays counted
    return _after_commit(request_id)


@blp.post("/requests/<request_id>/resend-code")
@require_scope("dsar:submit")
@blp.response(200, schemas.RequestOut)
@blp.alt_response(429, schema="Error",  # the Error body every 429 has, with this operation's own cause
                  description="too many resends for this request in the last hour, or this key's rate limit; "
                              "see Retry-After")
def resend(request_id: str) -> Any:
    """Send a new code (the old one stops working); `[dsar] code_resends_per_hour` (3) per request in any hour.
    Wrong codes count per request across resends: the fifth locks it."""
    with _rt().db.session() as session:
        dsar.resend_code(session, _rt(), _actor(), request_id)
    return _view(request_id)


@blp.post("/requests/<request_id>/extend")
@require_scope("dsar:manage")
@blp.arguments(ReasonIn)
@blp.response(200, schemas.RequestOut)
def extend(data: dict[str, Any], request_id: str) -> Any:
    """Extend the deadline once, where the jurisdiction allows it, with a reason."""
    with _rt().db.session() as session:
        dsar.extend(session, _rt(), _actor(), request_id, data["reason"])
    return _after_commit(request_id)  # an agent's request is synced


@blp.post("/requests/<request_id>/reject")
@require_scope("dsar:manage")
@blp.arguments(ReasonIn)
@blp.response(200, schemas.RequestOut)
def reject(data: dict[str, Any], request_id: str) -> Any:
    """Reject with a reason (e.g. manifestly unfounded)."""
    with _rt().db.session() as session:
        dsar.reject(session, _rt(), _actor(), request_id, data["reason"])
    return _after_commit(request_id)  # an agent's request is synced


@blp.post("/requests/<request_id>/cancel")
@require_scope("dsar:manage")
@blp.arguments(schemas.OptionalReasonIn)
@blp.response(200, schemas.RequestOut)
def cancel(data: dict[str, Any], request_id: str) -> Any:
    """Cancel a request that has not started executing."""
    with _rt().db.session() as session:
        dsar.cancel(session, _actor(), request_id, data["reason"])
    return _after_commit(request_id)  # an agent's request is synced


@blp.post("/requests/<request_id>/complete")
@require_scope("dsar:manage")
@blp.arguments(ReasonIn)
@blp.response(200, schemas.RequestOut)
def complete(data: dict[str, Any], request_id: str) -> Any:
    """Mark the manual part of a rectification, restriction or objection done (the request closes once its
    automatic tasks are final too)."""
    with _rt().db.session() as session:
        dsar.complete_manual(session, _rt(), _actor(), request_id, data["reason"])
    return _after_commit(request_id)  # an agent's request is synced


@blp.post("/requests/<request_id>/lift")
@require_scope("dsar:manage")
@blp.arguments(ReasonIn)
@blp.response(200, schemas.RequestOut)
def lift(data: dict[str, Any], request_id: str) -> Any:
    """End a restriction or objection: its flag stops and a restriction's legal hold is released."""
    with _rt().db.session() as session:
        dsar.lift(session, _rt(), _actor(), request_id, data["reason"])
    return _view(request_id)


@blp.post("/flags/lookup")
@require_scope("dsar:submit")
@blp.arguments(schemas.FlagsIn)
@blp.response(200, schemas.FlagsOut)
def flags(data: dict[str, Any]) -> Any:
    """Is processing of this subject restricted or objected to? Apps ask before processing (POST: the
    identity stays out of URLs and logs)."""
    with _rt().db.session() as session:
        return dsar.flags_for(session, _rt(), current_principal().app_id, data["subject"])


@blp.post("/requests/<request_id>/retry")
@require_scope("dsar:manage")
@blp.response(200, schemas.RequestOut)
def retry(request_id: str) -> Any:
    """Run the failed tasks again."""
    with _rt().db.session() as session:
        dsar.retry_failed(session, _actor(), request_id)
    return _after_commit(request_id)


@blp.post("/requests/<request_id>/export-token")
@require_scope("dsar:submit")
@blp.response(201, schemas.TokenOut)
def export_token(request_id: str) -> Any:
    """A short-lived, single-use token to download the export."""
    with _rt().db.session() as session:
        token, expires = dsar.create_download_token(session, _rt(), _actor(), request_id)
    return {"token": token, "expires_at": expires}


@blp.get("/requests/<request_id>/export")
@require_scope("dsar:submit")
@blp.arguments(schemas.DownloadQuery, location="query")
@blp.response(200, description="the export archive (zip), streamed")
def export(args: dict[str, Any], request_id: str) -> Any:
    """Download the export with a token from /export-token; the token is burnt."""
    with _rt().db.session() as session:
        path, key, label = dsar.redeem_download_token(session, _rt(), _actor(), request_id, args["token"])
    return Response(stream_with_context(decrypt_chunks(path, key, label)), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="export-{request_id}.zip"',
                             "Cache-Control": "no-store"})

