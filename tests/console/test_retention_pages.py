"""Retention in the console: a retention operator creates a policy (errors next to fields), edits it into a new
version (refused when someone else changed it first), previews it, runs it for real from the preview and
downloads a certificate that verifies with the JWKS; disabling; audited by operator id; not for an operator
limited to some apps; the stores page flags a category without a policy."""

from __future__ import annotations

import json
import re

from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import select

from retention import runs
from retention.models import RetentionPolicy, RetentionRun
from service.audit import AuditEvent
from tests.console.conftest import post_form
from tests.portal.conftest import csrf_token

NEW = {"target": "uploads/avatars", "retain_for": "P30D", "action": "delete", "schedule": "@daily",
       "basis": "Avatars of closed accounts: 30 days"}


def actors(app, action: str) -> list[str]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(AuditEvent.actor).where(AuditEvent.action == action)))


def test_a_retention_operator_creates_edits_previews_runs_and_downloads_the_certificate(app, make_operator):
    op = make_operator("retention")
    me = f"operator:{op.id}"
    bad = post_form(op.browser, "/console/retention", "/console/retention/policies",
                    {**NEW, "retain_for": "thirty days", "schedule": "whenever", "basis": ""})
    assert bad.status_code == 422
    for field in ("retain_for", "schedule", "basis"):
        assert f'id="{field}-error"' in bad.text, field
    made = post_form(op.browser, "/console/retention", "/console/retention/policies", NEW)
    assert made.status_code == 303 and made.headers["Location"].endswith("/console/retention/policies/uploads.avatars")
    twice = post_form(op.browser, "/console/retention", "/console/retention/policies", NEW)
    assert twice.status_code == 409 and 'id="key-error"' in twice.text

    page = "/console/retention/policies/uploads.avatars"
    stale = op.browser.get(page).text
    edited = post_form(op.browser, page, page, {"retain_for": "P60D", "action": "delete", "schedule": "@daily",
                                                "basis": NEW["basis"], "version": "1"})
    assert edited.status_code == 303
    collided = op.browser.post(page, data={"csrf_token": csrf_token(stale), "retain_for": "P90D",
                                           "action": "delete", "schedule": "@daily", "basis": "x", "version": "1"})
    assert collided.status_code == 409 and "changed since you opened it" in collided.text
    with app.extensions["db"].sessions() as session:
        policy = session.scalar(select(RetentionPolicy))
        assert policy.version == 2
    shown = op.browser.get(page).text
    assert "P60D" in shown and "P30D" in shown  # both versions listed

    preview = post_form(op.browser, page, "/console/retention/runs", {"policy": "uploads.avatars"})
    assert preview.status_code == 303
    run_page = op.browser.get(preview.headers["Location"])
    dry_id = preview.headers["Location"].rsplit("/", 1)[1]
    assert run_page.status_code == 200 and "Preview (dry run)" in run_page.text
    assert "Succeeded" in run_page.text and 'http-equiv="refresh"' not in run_page.text
    real = op.browser.post("/console/retention/runs", data={"csrf_token": csrf_token(run_page.text),
                                                            "from_dry_run": dry_id, "policy": "uploads.avatars"})
    assert real.status_code == 303
    real_page = op.browser.get(real.headers["Location"]).text
    real_id = real.headers["Location"].rsplit("/", 1)[1]
    assert real_id != dry_id and "Download the signed certificate" in real_page
    assert op.browser.get(f"/console/retention/runs/{dry_id}/certificate").status_code == 404
    cert = op.browser.get(f"/console/retention/runs/{real_id}/certificate")
    assert cert.status_code == 200 and cert.mimetype == "application/jose"
    keys = KeySet.import_key_set(app.test_client().get("/.well-known/jwks.json").json)
    claims = json.loads(jws.deserialize_compact(cert.text, keys, algorithms=["EdDSA", "Ed25519"]).payload)
    assert claims["jti"] == real_id
    with app.extensions["db"].sessions() as session:
        run = session.get(RetentionRun, real_id)
        assert run.source_run_id == dry_id and run.requested_by == me and not run.dry_run

    report = op.browser.get(f"/console/retention/runs/{real_id}/report.json")
    assert report.status_code == 200 and report.json["id"] == real_id and report.json["from_dry_run"] == dry_id
    again = post_form(op.browser, real.headers["Location"], f"/console/retention/runs/{real_id}/retry", {})
    assert again.status_code == 303 and "the run has succeeded" in op.browser.get(again.headers["Location"]).text

    disabled = post_form(op.browser, page, f"{page}/enabled", {"enabled": "no", "version": "2",
                                                               "reason": "moving to config"})
    assert disabled.status_code == 303
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(RetentionPolicy.enabled)) is False
    for action in ("retention.policy_created", "retention.policy_updated", "retention.policy_disabled",
                   "console.retention_action", "console.certificate_downloaded"):
        assert actors(app, action) == [me], action
    assert actors(app, "retention.run_requested") == [me, me]


def test_a_live_run_page_reloads_itself_and_the_lists_show_runs(app, make_operator, make_key, client):
    headers = make_key("ops", "platform:retention")
    assert client.post("/v1/retention/policies", headers=headers, json={
        "store": "uploads", "category": "avatars", "retain_for": "P30D", "basis": "test"}).status_code == 201
    # A run left queued, as when no worker has taken it yet (requested without being dispatched).
    run_id, _ = runs.request_run(app.extensions["db"], runs.policies.Actor("test"), policy_key="uploads.avatars",
                                 dry_run=True)
    viewer = make_operator("viewer")
    page = viewer.browser.get(f"/console/retention/runs/{run_id}").text
    assert '<meta http-equiv="refresh" content="5">' in page and "Confirm: destroy" not in page
    listed = viewer.browser.get("/console/retention").text
    assert run_id[:8] in listed and 'action="/console/retention/policies"' not in listed


def test_retention_actions_are_refused_to_an_operator_limited_to_some_apps(app, make_operator, make_key):
    make_key("shop", "consent:read")
    op = make_operator("retention", apps=("shop",))
    assert op.browser.get("/console/retention").status_code == 200
    refused = post_form(op.browser, "/console/retention", "/console/retention/policies", NEW)
    assert refused.status_code == 403
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(RetentionPolicy.id)) is None


def test_the_stores_page_shows_health_policies_and_flags_uncovered_categories(app, make_operator, make_key, client):
    headers = make_key("ops", "platform:retention")
    assert client.post("/v1/retention/policies", headers=headers, json={
        "store": "uploads", "category": "avatars", "retain_for": "P30D", "basis": "test"}).status_code == 201
    page = make_operator("viewer").browser.get("/console/stores").text
    categories = sum(len(s.describe().categories) for s in app.extensions["stores"])
    assert re.search(rf"{categories - 1} categories have no retention policy in force", page)
    assert "uploads.avatars (v1)" in page and page.count("No retention policy") == categories - 1
    assert "cloud-photos" in page and "OK" in page
