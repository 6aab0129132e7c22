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
# Pages anyone may open (signing in, setting up, the stylesheet); every other console view has a guard.
PUBLIC = {"console.signin", "console.signin_post", "console.signout", "console.setup_link", "console.setup",
          "console.setup_post", "console.setup_totp", "console.setup_totp_post", "console.setup_skip",
          "console.static"}
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
    "console.signout_everywhere": ("POST", "/console/signout-everywhere", EVERYONE),
}
APP_ROUTES = ("console.request_detail", "console.certificate", "console.identity", "console.confirm", "console.act")


def submit(client, headers, email="person@example.com") -> str:
    answer = client.post("/v1/requests", headers=headers, json={
        "type": "access", "jurisdiction": "GDPR", "subject": {"email": email}, "contact_email": email})
    assert answer.status_code == 202, answer.json
    return answer.json["id"]


@pytest.fixture
def two_apps(client, make_key):
    return {"shop": submit(client, make_key("shop", "dsar:submit,dsar:manage")),
            "other": submit(client, make_key("other", "dsar:submit,dsar:manage"))}


def call(browser, endpoint: str, request_id: str):
    method, path, _ = MATRIX[endpoint]
    url = path.format(id=request_id)
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
def test_each_role_may_do_exactly_its_part(app, make_operator, two_apps, role):
    op = make_operator(role)
    for endpoint, (_method, _path, allowed) in MATRIX.items():
        if endpoint == "console.signout_everywhere":
            continue  # below, last: it ends the session
        answer = call(op.browser, endpoint, two_apps["shop"])
        if role in allowed:
            assert answer.status_code not in (403, 303), (role, endpoint, answer.status_code)
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


def test_a_signed_out_browser_is_sent_to_sign_in_from_every_guarded_route(app, two_apps):
    browser = app.test_client()
    for endpoint, (method, _path, _) in MATRIX.items():
        if method == "GET":
            answer = call(browser, endpoint, two_apps["shop"])
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
