"""HTTP routes of DRP 1.0 (thin: logic in dsar.agents.service): the protocol under `/drp` (its `api_base`),
authenticated by the agents' signatures and bearer tokens, and the agents' admin API under `/v1/drp` (API keys)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException

from dsar import service as dsar
from dsar.agents import schemas
from dsar.agents import service as drp
from dsar.agents.models import DrpRequest
from dsar.agents.options import PREFIX
from dsar.agents.status import sync_dirty
from dsar.exports import decrypt_chunks
from dsar.outbox import dispatch
from service.api import API_HEADERS, ApiBlueprint
from service.auth import current_principal, require_scope
from service.errors import DomainError
from service.runtime import Runtime
from service.schemas import ReasonIn

blp = ApiBlueprint("drp", __name__, url_prefix=f"{PREFIX}/v1",
                   description="Data Rights Protocol 1.0 (Covered Business): authorised agents' signed requests. "
                               f"The DRP api_base is PUBLIC_URL + {PREFIX}.")
admin_blp = ApiBlueprint("drp_admin", __name__, url_prefix="/v1/drp",
                         description="Authorised agents (DRP) accepted by the app, and their requests")

_AGENT_BEARER = [{"drpAgentToken": []}]
_ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": schemas.DrpErrorOut}}}
           for code, text in ((400, "a malformed or invalid message"), (401, "no valid bearer token"),
                              (403, "a signature, agent, business or time check failed, or another agent's "
                                    "request"), (404, "no such request"), (409, "a replayed message, or a "
                                                                               "request that cannot be revoked"),
                              (410, "the link was used, or the results deleted after their time"),
                              (413, "a body over MAX_CONTENT_LENGTH"), (415, "not text/plain"),
                              (503, "the database is unreachable"))}


@blp.record_once
def _security_scheme(state: Any) -> None:
    state.app.extensions["api"].spec.components.security_scheme("drpAgentToken", {
        "type": "http", "scheme": "bearer",
        "description": "the token of POST /drp/v1/agent/{agent-id} (DRP pair-wise key set-up)"})


def _rt() -> Runtime:
    return current_app.extensions["runtime"]


def _json(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


@blp.errorhandler(drp.DrpError)
def _drp_error(exc: drp.DrpError) -> Response:
    response = Response(status=exc.status) if exc.bare else _json(exc.body(), exc.status)
    if exc.bare:
        del response.headers["Content-Type"]  # no body, so no type
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


@blp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    return _json({"code": str(exc.status), "message": exc.message, "fatal": exc.status < 500}, exc.status)


@blp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    response = _json({"code": str(exc.code), "message": exc.description or exc.name}, exc.code or 500)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@blp.after_request
def _headers(response: Response) -> Response:
    for name, value in API_HEADERS:  # as every /v1 answer: the status objects carry single-use URLs
        response.headers.setdefault(name, value)
    return response


def _body() -> bytes:
    if request.mimetype not in ("", "text/plain", "application/octet-stream"):
        raise drp.DrpError(415, f"the body must be text/plain, not {request.mimetype}", fatal=True)
    return request.get_data(cache=False)


def _agent(session: Any) -> Any:
    return drp.authenticate(session, request.headers.get("Authorization", ""))


def _after(request_id: str) -> dict[str, Any]:
    """After the commit: start the rights request's jobs (in-process: run them), then answer its status now."""
    dispatch(_rt())
    with _rt().db.session() as session:
        return drp.status_of(session, _rt(), _agent(session), request_id)


@blp.route("/agent/<agent_id>", methods=["POST"])
@blp.doc(summary="Pair-wise key set-up", requestBody=schemas.SIGNED_BODY, responses={
    "200": {"description": "a bearer token bound to the agent",
            "content": {"application/json": {"schema": schemas.DrpTokenOut}}},
    "403": {"description": "a check failed (no body)"}, "404": _ERRORS["404"],
    "413": _ERRORS["413"], "415": _ERRORS["415"], "503": _ERRORS["503"]})
def setup(agent_id: str) -> Response:
    """The agent's signed set-up message (`agent-id`, `business-id`, `issued-at`, `expires-at`, `drp.version`),
    checked in that order after the signature; answers a new bearer token (older ones of the agent stop
    working). Any failed check: 403 with no body."""
    body = _body()
    with _rt().db.session() as session:
        agent, token = drp.setup(session, _rt(), agent_id, body)
        name = agent.agent_id
    return _json({"agent-id": name, "token": token})


@blp.route("/agent/<agent_id>", methods=["GET"])
@blp.doc(summary="Agent information", security=_AGENT_BEARER, responses={
    "200": {"description": "the token is valid for this agent", "content": {"application/json": {
        "schema": {"type": "object"}}}}, **{c: _ERRORS[c] for c in ("401", "403", "404", "503")}})
def agent_info(agent_id: str) -> Response:
    """`{}` while the bearer token is valid for this agent; 403 for another agent's token."""
    with _rt().db.sessions() as session:
        return _json(drp.agent_info(_agent(session), agent_id))


@blp.route("/data-rights-request", methods=["POST"])
@blp.doc(summary="Data Rights Exercise", security=_AGENT_BEARER, requestBody=schemas.SIGNED_BODY, responses={
    "200": {"description": "the Exercise Status", "content": {"application/json": {"schema": schemas.DrpStatusOut}}},
    **{c: _ERRORS[c] for c in ("400", "401", "403", "409", "413", "415", "503")}})
def exercise() -> Response:
    """A signed request (`exercise`: access, access:categories, access:specific, deletion, sale:opt-out,
    sale:opt-in; `regime` ccpa or none; schema.org/Person claims). Answers its status."""
    body = _body()
    with _rt().db.session() as session:
        request_id = drp.exercise(session, _rt(), _agent(session), body).id
    return _json(_after(request_id))


@blp.route("/data-rights-request/<request_id>", methods=["GET"])
@blp.doc(summary="Data Rights Status", security=_AGENT_BEARER, responses={
    "200": {"description": "the Exercise Status", "content": {"application/json": {"schema": schemas.DrpStatusOut}}},
    **{c: _ERRORS[c] for c in ("401", "403", "404", "503")}})
def status(request_id: str) -> Response:
    """The request's status now; 403 when another agent made it."""
    sync_dirty(_rt())
    with _rt().db.session() as session:
        return _json(drp.status_of(session, _rt(), _agent(session), request_id))


@blp.route("/data-rights-request/<request_id>", methods=["DELETE"])
@blp.doc(summary="Data Rights Revoke", security=_AGENT_BEARER, requestBody=schemas.SIGNED_BODY, responses={
    "200": {"description": "the Exercise Status, revoked", "content": {"application/json": {
        "schema": schemas.DrpStatusOut}}},
    **{c: _ERRORS[c] for c in ("400", "401", "403", "404", "409", "413", "415", "503")}})
def revoke(request_id: str) -> Response:
    """The signed revoke message (`reason` optional): a request not yet being carried out is cancelled."""
    body = _body()
    with _rt().db.session() as session:
        answer = drp.revoke(session, _rt(), _agent(session), request_id, body)
    return _json(answer)


@blp.route("/data-rights-request/<request_id>/results", methods=["GET"])
@blp.doc(summary="Download the results (results_url)", parameters=[
    {"in": "query", "name": "token", "required": True,
     "schema": {"type": "string", "minLength": 20, "maxLength": 100}}],
    responses={"200": {"description": "the access results (zip), streamed", "content": {"application/zip": {}}},
               **{c: _ERRORS[c] for c in ("400", "404", "410", "503")}})
def results(request_id: str) -> Response:
    """The single-use download link of `results_url` (the token alone authorises it, so the agent may hand it
    to the person): the decrypted archive, streamed."""
    token = request.args.get("token", "")
    if not 20 <= len(token) <= 100:
        raise drp.DrpError(400, "token: expected the token of results_url", fatal=True)
    with _rt().db.session() as session:
        row = session.get(DrpRequest, request_id)
        if row is None or row.dsar_request_id is None:
            raise drp.DrpError(404, "no such request")
        actor = dsar.Actor(app_id=row.app_id, name="drp:results_url")
        path, key, label = dsar.redeem_download_token(session, _rt(), actor, row.dsar_request_id, token)
    return Response(stream_with_context(decrypt_chunks(path, key, label)), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="results-{request_id}.zip"'})


# --- the admin API (API keys) ------------------------------------------------------------------------------

def _registrar() -> drp.Registrar:
    p = current_principal()
    return drp.Registrar(app_id=p.app_id, name=f"key:{p.key_id}")


@admin_blp.post("/agents")
@require_scope("admin")
@admin_blp.arguments(schemas.DrpAgentIn)
@admin_blp.response(201, schemas.DrpAgentOut)
def register(data: dict[str, Any]) -> Any:
    """Accept an authorised agent (its id and verify key from the DRP service directory) for this app, as the
    Covered Business `business_id`."""
    with _rt().db.session() as session:
        return drp.register_agent(session, _registrar(), data)


@admin_blp.get("/agents")
@require_scope("admin")
@admin_blp.response(200, schemas.DrpAgentOut(many=True))
def agents() -> Any:
    """The app's agents, revoked ones included."""
    with _rt().db.sessions() as session:
        return drp.list_agents(session, current_principal().app_id)


@admin_blp.post("/agents/<agent_id>/revoke")
@require_scope("admin")
@admin_blp.arguments(ReasonIn)
@admin_blp.response(200, schemas.DrpAgentOut)
def revoke_agent(data: dict[str, Any], agent_id: str) -> Any:
    """Stop accepting the agent: its bearer tokens stop working at once (its requests go on)."""
    with _rt().db.session() as session:
        return drp.revoke_agent(session, _registrar(), agent_id, data["reason"])


@admin_blp.post("/requests/<request_id>/deny")
@require_scope("dsar:manage")
@admin_blp.arguments(schemas.DrpDenyIn)
@admin_blp.response(200, schemas.DrpStatusOut)
def deny(data: dict[str, Any], request_id: str) -> Any:
    """Deny an agent's request with a DRP reason code; its rights request is rejected and the agent called
    back."""
    with _rt().db.session() as session:
        drp.deny(session, _rt(), _registrar(), request_id, data["reason"], data["processing_details"])
    sync_dirty(_rt())
    with _rt().db.sessions() as session:
        row = session.get(DrpRequest, request_id)
        return row.last if row is not None else {}
