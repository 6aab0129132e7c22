"""Single sign-on through OpenID Connect against a real provider started by the test (tests/oidcprovider.py):
the first sign-in makes the operator, the claim sets its role each time, an admin needs a second factor at the
provider, and every wrong answer (state, audience, issuer, nonce, signature, expiry) signs nobody in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from console import sso
from console.models import Operator
from privacy import create_app
from service.audit import AuditEvent
from service.config import ConfigError
from service.tenancy import create_app_tenant
from tests.conftest import _truncate
from tests.console.conftest import create_operator, set_up
from tests.oidcprovider import OidcProvider

ROLES = "privacy-admins=admin,privacy-agents=agent,privacy-viewers=viewer"
AGENT = {"sub": "u-100", "email": "Ana@Example.com", "email_verified": True, "groups": ["staff", "privacy-agents"]}


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def _sso_app(base_config: dict[str, str], oidc: OidcProvider) -> Iterator[Flask]:
    app = create_app({**base_config, "OIDC_ISSUER": oidc.url, "OIDC_CLIENT_ID": oidc.provider.client_id,
                      "OIDC_CLIENT_SECRET": oidc.provider.client_secret, "OIDC_ROLES": ROLES, "OIDC_NAME": "Acme"})
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].dispose()


@pytest.fixture
def sso_app(_sso_app: Flask) -> Iterator[Flask]:
    yield _sso_app
    _truncate(_sso_app)
    _sso_app.extensions["page_limiter"].reset()


def sign_in(app: Flask, oidc: OidcProvider, user: dict[str, Any], next_path: str = "/console/requests",
            tamper: str | None = None) -> tuple[FlaskClient, Any]:
    """A browser going to the provider and back: the provider is asked over real HTTP, as a browser would."""
    oidc.provider.user, oidc.provider.tamper = user, tamper
    browser = app.test_client()
    start = browser.get(f"/console/sso?next={next_path}")
    assert start.status_code == 302 and start.headers["Location"].startswith(oidc.url + "/authorize?")
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    location = urlsplit(back.headers["Location"])
    assert location.path == "/console/sso/callback"
    return browser, browser.get(f"{location.path}?{location.query}")


def _operator(app: Flask, email: str) -> Operator | None:
    with app.extensions["db"].sessions() as s:
        return s.scalar(select(Operator).where(Operator.email == email))


def _actions(app: Flask) -> list[tuple[str, str, dict[str, Any]]]:
    with app.extensions["db"].sessions() as s:
        return [(e.action, e.actor, e.details) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_first_sign_in_makes_the_operator_with_the_claims_role(sso_app: Flask, oidc: OidcProvider) -> None:
    browser, answer = sign_in(sso_app, oidc, AGENT)
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/requests"
    assert browser.get("/console/requests").status_code == 200
    assert browser.get("/console/apps").status_code == 403  # an agent, not an admin
    row = _operator(sso_app, "ana@example.com")
    assert row is not None and row.role == "agent" and row.password_hash is None
    assert row.sso_subject == f"{oidc.url}|u-100"
    actions = _actions(sso_app)
    assert ("console.operator_created", "sso", {"role": "agent", "apps": None}) in actions
    assert ("console.signed_in", f"operator:{row.id}", {"sso": True}) in actions
    assert "ana@example.com" not in repr(actions).lower()
    # The second sign-in finds the same operator by issuer and subject, even when the email changed.
    _, again = sign_in(sso_app, oidc, {**AGENT, "email": "ana.new@example.com"})
    assert again.status_code == 303
    with sso_app.extensions["db"].sessions() as s:
        assert s.query(Operator).count() == 1


def test_role_follows_the_claim_and_an_admin_needs_a_second_factor(sso_app: Flask, oidc: OidcProvider) -> None:
    sign_in(sso_app, oidc, AGENT)
    admin = {**AGENT, "groups": ["privacy-admins"]}
    _, refused = sign_in(sso_app, oidc, admin)  # no `amr`: the provider did not say it checked a second factor
    assert refused.status_code == 403 and "second factor" in refused.text
    assert _operator(sso_app, "ana@example.com").role == "agent"
    browser, answer = sign_in(sso_app, oidc, {**admin, "amr": ["pwd", "otp"]})
    assert answer.status_code == 303
    assert browser.get("/console/apps").status_code == 200
    row = _operator(sso_app, "ana@example.com")
    assert row.role == "admin"
    assert ("console.operator_role_changed", "sso", {"from": "agent", "to": "admin"}) in _actions(sso_app)
    # Taken out of the group at the provider: the next sign-in has no role and signs nobody in.
    _, gone = sign_in(sso_app, oidc, {**AGENT, "groups": ["staff"]})
    assert gone.status_code == 403 and "no role" in gone.text
    assert ("console.sign_in_failed", f"operator:{row.id}", {"reason": "sso:no_role"}) in _actions(sso_app)


def test_no_role_no_operator(sso_app: Flask, oidc: OidcProvider) -> None:
    browser, answer = sign_in(sso_app, oidc, {**AGENT, "groups": "staff"})
    assert answer.status_code == 403
    assert _operator(sso_app, "ana@example.com") is None
    assert browser.get("/console/").status_code == 303  # still signed out


def test_a_local_account_is_never_taken_over(sso_app: Flask, oidc: OidcProvider) -> None:
    set_up(sso_app, create_operator(sso_app, "ana@example.com", "viewer"))
    _, answer = sign_in(sso_app, oidc, AGENT)
    assert answer.status_code == 403 and "already exists" in answer.text
    row = _operator(sso_app, "ana@example.com")
    assert row.sso_subject is None and row.role == "viewer"


def test_unverified_email_and_disabled_operator_are_refused(sso_app: Flask, oidc: OidcProvider) -> None:
    _, unverified = sign_in(sso_app, oidc, {**AGENT, "email_verified": False})
    assert unverified.status_code == 403 and _operator(sso_app, "ana@example.com") is None
    sign_in(sso_app, oidc, AGENT)
    result = sso_app.test_cli_runner().invoke(args=["operators", "disable", "ana@example.com"])
    assert result.exit_code == 0, result.output
    browser, disabled = sign_in(sso_app, oidc, AGENT)
    assert disabled.status_code == 403 and "disabled" in disabled.text
    assert browser.get("/console/").status_code == 303


@pytest.mark.parametrize("tamper", ["audience", "issuer", "nonce", "signature", "expired"])
def test_a_wrong_id_token_signs_nobody_in(sso_app: Flask, oidc: OidcProvider, tamper: str) -> None:
    browser, answer = sign_in(sso_app, oidc, AGENT, tamper=tamper)
    assert answer.status_code == 401
    assert browser.get("/console/").status_code == 303
    assert _operator(sso_app, "ana@example.com") is None


def test_a_callback_without_its_state_is_refused(sso_app: Flask, oidc: OidcProvider) -> None:
    oidc.provider.user = AGENT
    starter, other = sso_app.test_client(), sso_app.test_client()
    start = starter.get("/console/sso")
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    location = urlsplit(back.headers["Location"])
    # Another browser (an attacker's link) brings the code back: its session holds no such state.
    assert other.get(f"{location.path}?{location.query}").status_code == 401
    assert _operator(sso_app, "ana@example.com") is None


def test_the_next_page_stays_on_the_console(sso_app: Flask, oidc: OidcProvider) -> None:
    _, answer = sign_in(sso_app, oidc, AGENT, next_path="https://evil.example/")
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/"


def test_sign_in_page_offers_sso_only_when_configured(sso_app: Flask, app: Flask) -> None:
    assert "Sign in with Acme" in sso_app.test_client().get("/console/signin").text
    plain = app.test_client()
    assert "/console/sso" not in plain.get("/console/signin").text
    assert plain.get("/console/sso").status_code == 404
    assert plain.get("/console/sso/callback?code=x&state=y").status_code == 404


def test_settings_are_checked() -> None:
    good = {"OIDC_ISSUER": "https://id.example.com/", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s",
            "OIDC_ROLES": "a=agent, b = admin"}
    loaded = sso.load(good)
    assert loaded.issuer == "https://id.example.com" and loaded.roles == (("a", "agent"), ("b", "admin"))
    assert sso.load({}) is None
    for change, named in [({"OIDC_ISSUER": "http://id.example.com"}, "OIDC_ISSUER"),
                          ({"OIDC_CLIENT_SECRET": ""}, "OIDC_CLIENT_SECRET"),
                          ({"OIDC_ROLES": "a=root"}, "OIDC_ROLES"), ({"OIDC_ROLES": "agent"}, "OIDC_ROLES")]:
        with pytest.raises(ConfigError, match=named):
            sso.load({**good, **change})
    assert sso.role_for(loaded, {"groups": ["x", "b", "a"]}) == "agent"  # the mapping's order decides
    assert sso.role_for(loaded, {"groups": 7}) is None


def test_an_sso_operator_can_be_limited_to_some_apps(sso_app: Flask, oidc: OidcProvider) -> None:
    with sso_app.extensions["db"].session() as s:
        create_app_tenant(s, "shop")
    sign_in(sso_app, oidc, AGENT)
    runner = sso_app.test_cli_runner()
    assert runner.invoke(args=["operators", "limit", "ana@example.com", "--app", "nope"]).exit_code != 0
    result = runner.invoke(args=["operators", "limit", "ana@example.com", "--app", "shop"])
    assert result.exit_code == 0, result.output
    _, again = sign_in(sso_app, oidc, AGENT)  # the limit is kept across sign-ins
    assert again.status_code == 303
    row = _operator(sso_app, "ana@example.com")
    assert row.app_ids is not None and len(row.app_ids) == 1
    listed = runner.invoke(args=["operators", "list"]).output
    assert "\tshop\tactive\tsso" in listed
    assert ("console.operator_apps_changed", "cli:operators limit", {"from": None, "to": row.app_ids}) \
        in _actions(sso_app)
