"""HTTP routes of the retention API (thin: validation by schemas, logic in retention.policies and .runs)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest.pagination import Page, PaginationParameters

from retention import certificates, jobs, policies, runs, schemas
from retention.views import policy_view
from service.api import ApiBlueprint, link, links
from service.auth import current_principal, require_scope
from service.idempotency import claim, idempotent

blp = ApiBlueprint("retention", __name__, url_prefix="/v1/retention",
                description="Retention policies, destruction runs and their certificates")
# Where a policy's key is used next: a run of that policy and the list of its runs.
POLICY_LINKS = {
    "run": link("post", "/v1/retention/runs", "Apply this policy now (or preview it with dry_run)",
                body={"policy": "$response.body#/key"}),
    "runs": link("get", "/v1/retention/runs", "This policy's runs", parameters={"query.policy": "$response.body#/key"}),
}
# Where a run's id is used next.
RUN_LINKS = {
    "get": link("get", "/v1/retention/runs/{run_id}", "The run's state and counts",
                parameters={"path.run_id": "$response.body#/id"}),
    "certificate": link("get", "/v1/retention/runs/{run_id}/certificate", "Its destruction certificate, once done",
                        parameters={"path.run_id": "$response.body#/id"}),
    "retry": link("post", "/v1/retention/runs/{run_id}/retry", "Retry a failed run",
                  parameters={"path.run_id": "$response.body#/id"}),
}
SCOPE = "platform:retention"  # retention spans every app's data: a company-wide scope (service.tenancy)


def _db() -> Any:
    return current_app.extensions["db"]


def _stores() -> Any:
    return current_app.extensions["stores"]


def _actor() -> policies.Actor:
    principal = current_principal()
    return policies.Actor(f"key:{principal.key_id}", principal.app_id)


@blp.post("/policies")
@require_scope(SCOPE)
@blp.arguments(schemas.RetentionPolicyIn)
@blp.response(201, schemas.RetentionPolicyOut)
@blp.doc(**links(201, **POLICY_LINKS))
def create_policy(data: dict[str, Any]) -> Any:
    """Define how long a store keeps a category of personal data, and what happens after."""
    with _db().session() as session:
        policy = policies.create_policy(session, _stores(), _actor(), data)
        return policy_view(session, policy)


@blp.get("/policies")
@require_scope(SCOPE)
@blp.arguments(schemas.RetentionPolicyQuery, location="query")
@blp.response(200, schemas.RetentionPolicyOut(many=True))
@blp.paginate()
def list_policies(args: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
    """Every policy, by key, with its current version, origin (api or config) and last run."""
    with _db().session() as session:
        # One per store and category: page the list, then look up the last runs of that page only.
        page = Page(policies.list_policies(session, **args), pagination_parameters).items
        return [policy_view(session, p) for p in page]


@blp.get("/policies/<key>")
@require_scope(SCOPE)
@blp.response(200, schemas.RetentionPolicyOut)
@blp.doc(**links(200, **POLICY_LINKS))
def get_policy(key: str) -> Any:
    with _db().session() as session:
        return policy_view(session, policies.get_policy(session, key))


@blp.patch("/policies/<key>")
@require_scope(SCOPE)
@blp.arguments(schemas.RetentionPolicyUpdate)
@blp.response(200, schemas.RetentionPolicyOut)
def update_policy(data: dict[str, Any], key: str) -> Any:
    """Change a policy: a new version when anything differs; the old version stays on record."""
    with _db().session() as session:
        policy, _ = policies.update_policy(session, _stores(), _actor(), key, data)
        return policy_view(session, policy)


@blp.get("/policies/<key>/versions")
@require_scope(SCOPE)
@blp.response(200, schemas.RetentionVersionOut(many=True))
def list_versions(key: str) -> Any:
    """The policy's versions, newest first."""
    with _db().session() as session:
        return policies.versions(session, key)


@blp.post("/policies/<key>/disable")
@require_scope(SCOPE)
@blp.response(200, schemas.RetentionPolicyOut)
def disable_policy(key: str) -> Any:
    """Stop applying the policy (runs and schedule); it stays on record."""
    with _db().session() as session:
        return policy_view(session, policies.set_enabled(session, _actor(), key, False))


@blp.post("/policies/<key>/enable")
@require_scope(SCOPE)
@blp.response(200, schemas.RetentionPolicyOut)
def enable_policy(key: str) -> Any:
    with _db().session() as session:
        return policy_view(session, policies.set_enabled(session, _actor(), key, True))


def _replay_run(run_id: str) -> tuple[Any, int]:
    with _db().session() as session:
        return schemas.RetentionRunOut().dump(runs.report(session, runs.get_run(session, run_id))), 202


@blp.post("/runs")
@require_scope(SCOPE)
@idempotent(_replay_run)
@blp.arguments(schemas.RetentionRunIn)
@blp.response(202, schemas.RetentionRunOut)
@blp.doc(**links(202, **RUN_LINKS, apply=link("post", "/v1/retention/runs",
                                 "Run exactly what this dry run previewed, once it succeeded",
                                 body={"from_dry_run": "$response.body#/id", "dry_run": False})))
def request_run(data: dict[str, Any]) -> Any:
    """Apply one policy, or every enabled policy, as a job on the `retention` queue.

    A run already queued or running for the same policy (and the same dry_run) is returned instead of a new one.
    Answers 202 once the run is saved, even when the queue cannot take it now (the scheduler's tick dispatches
    it). With an `Idempotency-Key`, a retry answers the first result.
    """
    # request_run commits in transactions of its own (concurrent triggers converge on one run); the key's claim
    # commits with the run it creates.
    run_id, created = runs.request_run(_db(), _actor(), policy_key=data["policy"], dry_run=data["dry_run"],
                                       from_dry_run=data["from_dry_run"], on_create=claim)
    if created:
        jobs.dispatch(current_app.extensions["queue"], run_id)
    with _db().session() as session:
        return runs.report(session, runs.get_run(session, run_id))


@blp.get("/runs")
@require_scope(SCOPE)
@blp.arguments(schemas.RetentionRunQuery, location="query")
@blp.response(200, schemas.RetentionRunOut(many=True))
@blp.paginate()
def list_runs(args: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
    """Runs, newest first, filtered by policy, state, dry_run or trigger (batches are left out here)."""
    with _db().session() as session:
        items, total = runs.list_runs(session, **args, offset=pagination_parameters.first_item,
                                      limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return [runs.report(session, r, batches=False) for r in items]


@blp.get("/runs/<run_id>")
@require_scope(SCOPE)
@blp.response(200, schemas.RetentionRunOut)
def get_run(run_id: str) -> Any:
    """A run's state; per step its cutoff, the count of each batch so far, what holds kept, and errors."""
    with _db().session() as session:
        return runs.report(session, runs.get_run(session, run_id))


@blp.post("/runs/<run_id>/retry")
@require_scope(SCOPE)
@blp.response(202, schemas.RetentionRunOut)
def retry_run(run_id: str) -> Any:
    """Continue a failed or interrupted run from its last committed batch, with the same cutoffs."""
    with _db().session() as session:
        runs.retry_run(session, _actor(), run_id)
    jobs.dispatch(current_app.extensions["queue"], run_id)
    with _db().session() as session:
        return runs.report(session, runs.get_run(session, run_id))


@blp.get("/runs/<run_id>/certificate")
@require_scope(SCOPE)
@blp.response(200, description="The destruction certificate: a compact JWS (application/jose)")
def get_certificate(run_id: str) -> Any:
    """Download the signed destruction certificate; verify it with /.well-known/jwks.json."""
    with _db().session() as session:
        run = certificates.certificate_of(session, run_id)
    return Response(run.certificate, mimetype="application/jose", headers={
        "Content-Disposition": f'attachment; filename="retention-{run.id}.jws"',
        "X-Certificate-SHA256": run.certificate_sha256 or ""})
