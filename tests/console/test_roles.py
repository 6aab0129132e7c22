"""Each role sees and does exactly what it should on every console route (allowed, 403 page), an operator limited
to some apps gets 404 for another app's request, and no console route is left unguarded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from console.auth import CAPABILITIES
from service.audit import AuditEvent
from tests.portal.conftest import csrf_token

ROLES = ("viewer", "agent", "retention", "admin")
EVERYONE, AGENTS = set(ROLES), {"agent", "admin"}
RETENTION, ADMINS = {"retention", "admin"}, {"admin"}
# Pages anyone may open (signing in, setting up, the stylesheet); every other console view has a guard.
PUBLIC = {"console.signin", "console.signin_post", "console.signout", "console.setup_link", "console.setup",
          "console.setup_post", "console.setup_totp", "console.setup_totp_post", "console.setup_skip",
          "console.static", "console.sso_start", "console.sso_callback"}
# endpoint -> (method, path with {id}, roles allowed): written out, not derived from the code under test.
MATRIX = {
    "console.overview": ("GET", "/console/", EVERYONE),
    "console.account": ("GET", "/console/account", EVERYONE),
    "console.requests": ("GET", "/console/requests", EVERYONE),
    "console.requests_csv": ("GET", "/console/requests.csv", EVERYONE),
    "console.request_detail": ("GET", "/console/requests/{id}", EVERYONE),
    "console.certificate": ("GET", "/console/requests/{id}/certificate", EVERYONE),
    "console.identity": ("GET", "/console/requests/{id}/identity", AGENTS),
    "console.confirm": ("GET", "/console/requests/{id}/reject", AGENTS),
    "console.act": ("POST", "/console/requests/{id}/reject", AGENTS),
    "console.overview_csv": ("GET", "/console/overview.csv", EVERYONE),
    "console.holds_list": ("GET", "/console/holds", EVERYONE),
    "console.hold_create": ("POST", "/console/holds", AGENTS),
    "console.hold_release_confirm": ("GET", "/console/holds/{hold}/release", AGENTS),
    "console.hold_release": ("POST", "/console/holds/{hold}/release", AGENTS),
    "console.stores_page": ("GET", "/console/stores", EVERYONE),
    "console.retention_page": ("GET", "/console/retention", EVERYONE),
    "console.policy_create": ("POST", "/console/retention/policies", RETENTION),
    "console.policy_page": ("GET", "/console/retention/policies/{policy}", EVERYONE),
    "console.policy_edit": ("POST", "/console/retention/policies/{policy}", RETENTION),
    "console.policy_enabled": ("POST", "/console/retention/policies/{policy}/enabled", RETENTION),
    "console.run_start": ("POST", "/console/retention/runs", RETENTION),
    "console.run_page": ("GET", "/console/retention/runs/{run}", EVERYONE),
    "console.run_certificate": ("GET", "/console/retention/runs/{run}/certificate", EVERYONE),
    "console.run_report": ("GET", "/console/retention/runs/{run}/report.json", EVERYONE),
    "console.run_retry": ("POST", "/console/retention/runs/{run}/retry", RETENTION),
    "console.consent_page": ("GET", "/console/consent", EVERYONE),
    "console.consent_csv": ("GET", "/console/consent/rates.csv", EVERYONE),
    "console.version_publish": ("POST", "/console/consent/versions", ADMINS),
    "console.apps_page": ("GET", "/console/apps", ADMINS),
    "console.app_create": ("POST", "/console/apps", ADMINS),
    "console.key_create": ("POST", "/console/keys", ADMINS),
    "console.key_revoke_confirm": ("GET", "/console/keys/{key}/revoke", ADMINS),
    "console.key_revoke": ("POST", "/console/keys/{key}/revoke", ADMINS),
    "console.incidents_list": ("GET", "/console/incidents", EVERYONE),
    "console.incident_create": ("POST", "/console/incidents", ADMINS),
    "console.incident_page": ("GET", "/console/incidents/{incident}", EVERYONE),
    "console.incident_advance": ("POST", "/console/incidents/{incident}/state", ADMINS),
    "console.incident_notify": ("POST", "/console/incidents/{incident}/notifications", ADMINS),
    "console.incident_assess": ("POST", "/console/incidents/{incident}/assess", ADMINS),
    "console.incident_campaign": ("POST", "/console/incidents/{incident}/campaigns", ADMINS),
    "console.incident_report": ("GET", "/console/incidents/{incident}/report", EVERYONE),
    "console.incident_record": ("GET", "/console/incidents/{incident}/record", EVERYONE),
    "console.governance_page": ("GET", "/console/governance", EVERYONE),
    "console.ropa_page": ("GET", "/console/governance/ropa", EVERYONE),
    "console.ropa_csv": ("GET", "/console/governance/ropa.csv", EVERYONE),
    "console.assessments_page": ("GET", "/console/governance/assessments", EVERYONE),
    "console.assessment_page": ("GET", "/console/governance/assessments/{assessment}", EVERYONE),
    "console.processors_page": ("GET", "/console/governance/processors", EVERYONE),
    "console.processor_create": ("POST", "/console/governance/processors", ADMINS),
    "console.processor_review": ("POST", "/console/governance/processors/reviews", ADMINS),
    "console.assessment_create": ("POST", "/console/governance/assessments", ADMINS),
    "console.assessment_answers": ("POST", "/console/governance/assessments/{assessment}/answers", ADMINS),
    "console.assessment_risk": ("POST", "/console/governance/assessments/{assessment}/risks", ADMINS),
    "console.assessment_mitigation": ("POST", "/console/governance/assessments/{assessment}/mitigations", ADMINS),
    "console.assessment_submit": ("POST", "/console/governance/assessments/{assessment}/submit", ADMINS),
    "console.assessment_approve": ("POST", "/console/governance/assessments/{assessment}/approve", ADMINS),
    "console.evidence_page": ("GET", "/console/governance/evidence", EVERYONE),
    "console.evidence_start": ("POST", "/console/governance/evidence", ADMINS),
    "console.evidence_download": ("GET", "/console/governance/evidence/none/pack.zip", EVERYONE),
    "console.evidence_verify": ("POST", "/console/governance/evidence/none/verify", EVERYONE),
    "console.assessment_request_changes": ("POST",
                                           "/console/governance/assessments/{assessment}/request-changes", ADMINS),
    "console.signout_everywhere": ("POST", "/console/signout-everywhere", EVERYONE),
}
APP_ROUTES = ("console.request_detail", "console.certificate", "console.identity", "console.confirm", "console.act")


def submit(client, headers, email="person@example.com") -> str:
    answer = client.post("/v1/requests", headers=headers, json={
        "type": "access", "jurisdiction": "GDPR", "subject": {"email": email}, "contact_email": email})
    assert answer.status_code == 202, answer.json
    return answer.json["id"]


@pytest.fixture
def objects(app, client, make_key) -> dict[str, str]:
    """A hold, a retention policy, a finished preview, an incident (no window: nothing to assess) and a key of
    app `shop`, for the routes that name one."""
    from service.tenancy import ApiKey

    headers = make_key("shop", "dsar:manage,platform:retention,incidents:manage")
    hold = client.post("/v1/holds", headers=headers, json={"category": "photos", "reason": "litigation"})
    assert hold.status_code == 201, hold.json
    policy = client.post("/v1/retention/policies", headers=headers, json={
        "store": "uploads", "category": "avatars", "retain_for": "P30D", "basis": "a test"})
    assert policy.status_code == 201, policy.json
    run = client.post("/v1/retention/runs", headers=headers, json={"policy": "uploads.avatars", "dry_run": True})
    assert run.status_code == 202, run.json
    incident = client.post("/v1/incidents", headers=headers, json={
        "title": "t", "description": "d", "discovered_at": "2026-11-01T10:00:00Z",
        "scope": [{"store": "uploads", "category": "photos"}], "jurisdictions": ["GDPR"]})
    assert incident.status_code == 201, incident.json
    with app.extensions["db"].sessions() as session:
        key = session.scalars(select(ApiKey.key_id)).first()
    return {"hold": hold.json["id"], "policy": "uploads.avatars", "run": run.json["id"], "key": key,
            "incident": incident.json["id"], "assessment": "no-such-assessment"}


@pytest.fixture
def two_apps(client, make_key):
    return {"shop": submit(client, make_key("shop", "dsar:submit,dsar:manage")),
            "other": submit(client, make_key("other", "dsar:submit,dsar:manage"))}


def call(browser, endpoint: str, request_id: str, objects: dict[str, str] | None = None):
    method, path, _ = MATRIX[endpoint]
    url = path.format(id=request_id, **(objects or {}))
    if method == "GET":
        return browser.get(url)
    token = csrf_token(browser.get("/console/account").text)
    # A stale marker: an allowed operator is told the request changed, and nothing is done.
    return browser.post(url, data={"csrf_token": token, "marker": "stale", "reason": "a test of the guard"})


def test_every_console_route_is_in_the_matrix_or_public(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("console.")}
    assert endpoints == PUBLIC | set(MATRIX), "a console route is missing from the role matrix"
    for endpoint in endpoints - PUBLIC:
        assert hasattr(app.view_functions[endpoint], "console_capability"), f"{endpoint} has no guard"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_its_part(app, make_operator, two_apps, objects, role):
    op = make_operator(role)
    for endpoint, (_method, _path, allowed) in MATRIX.items():
        if endpoint == "console.signout_everywhere":
            continue  # below, last: it ends the session
        answer = call(op.browser, endpoint, two_apps["shop"], objects)
        if role in allowed:
            assert answer.status_code != 403, (role, endpoint, answer.status_code)
            assert "/console/signin" not in answer.headers.get("Location", ""), (role, endpoint)
            assert answer.status_code < 500
        else:
            assert answer.status_code == 403, (role, endpoint, answer.status_code)
            assert "text/html" in answer.content_type and "This page cannot be shown" in answer.text
    assert call(op.browser, "console.signout_everywhere", "").status_code == 303
    assert op.browser.get("/console/").status_code == 303


def test_the_roles_capabilities_are_as_documented():
    assert CAPABILITIES["viewer"] == {"read"}
    assert CAPABILITIES["agent"] == {"read", "requests.act", "identity.view"}
    assert CAPABILITIES["retention"] == {"read", "retention.act"}
    assert CAPABILITIES["admin"] >= CAPABILITIES["agent"] | CAPABILITIES["retention"] | {"admin"}
    # Governance records and approving assessments are the privacy office's (admins) alone.
    assert {r for r, caps in CAPABILITIES.items() if caps & {"governance.act", "governance.approve"}} == {"admin"}


def test_a_signed_out_browser_is_sent_to_sign_in_from_every_guarded_route(app, two_apps, objects):
    browser = app.test_client()
    for endpoint, (method, _path, _) in MATRIX.items():
        if method == "GET":
            answer = call(browser, endpoint, two_apps["shop"], objects)
            assert answer.status_code == 303 and "/console/signin" in answer.headers["Location"], endpoint


def test_an_operator_limited_to_an_app_sees_nothing_of_another(app, make_operator, two_apps):
    op = make_operator("agent", apps=("shop",))
    for endpoint in APP_ROUTES:
        assert call(op.browser, endpoint, two_apps["other"]).status_code == 404, endpoint
        if endpoint != "console.certificate":  # shop's request has none yet: 404 either way
            assert call(op.browser, endpoint, two_apps["shop"]).status_code not in (403, 404), endpoint
    queue = op.browser.get("/console/requests").text
    assert two_apps["shop"] in queue and two_apps["other"] not in queue
    assert two_apps["other"] not in op.browser.get("/console/requests?app=other").text
    csv = op.browser.get("/console/requests.csv").text
    assert two_apps["shop"] in csv and two_apps["other"] not in csv
    overview = op.browser.get("/console/").text
    assert '<span class="figure">1</span>' in overview  # one open request: shop's
    with app.extensions["db"].sessions() as session:
        looked = session.scalars(select(AuditEvent.resource_id).where(
            AuditEvent.action == "console.identity_viewed")).all()
    assert looked == [two_apps["shop"]]  # the refused look at other's identity recorded nothing
