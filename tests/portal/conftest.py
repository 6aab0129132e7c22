"""Fixtures of the privacy centre's tests: an app with a policy, links minted through the API, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

POLICY = {"key": "app", "title": "Demo app privacy policy", "purposes": [
    {"key": "essential", "description": "Run the service you signed up for", "required": True,
     "lawful_basis": "contract"},
    {"key": "analytics", "description": "Measure how the app is used", "honors_gpc": True},
    {"key": "marketing", "description": "Offers by email", "honors_gpc": True, "third_party": "Example Ads"},
]}


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def save_choices(browser: Any, purposes: tuple[str, ...] = (), version: str = "1", slug: str = "shop",
                 headers: dict[str, str] | None = None) -> Any:
    """Submit the My consents form of policy `app` as a browser does: the page's CSRF token, checked boxes only."""
    html = browser.get(f"/privacy/{slug}/consents").text
    return browser.post(f"/privacy/{slug}/consents/app", headers=headers or {},
                        data={"csrf_token": csrf_token(html), "version": version, "purpose": list(purposes)})


def verified_claims(client: Any, token: str) -> dict[str, Any]:
    """A receipt's claims, verified by joserfc (an independent JOSE library) with the published JWKS."""
    import json

    from joserfc import jws
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    return json.loads(jws.deserialize_compact(token, keys, algorithms=["EdDSA"]).payload)


@pytest.fixture
def portal_app(client, make_key) -> dict[str, Any]:
    """App `shop` with a policy in effect (version 1) and keys: consent:write+read, and admin."""
    admin = make_key("shop", "admin")
    assert client.post("/v1/policies", json=POLICY, headers=admin).status_code == 201
    version = client.post("/v1/policies/app/versions", headers=admin, json={
        "version": "1", "effective_at": "2020-01-01T00:00:00Z", "text": "We use your data as follows.",
        "material": True})
    assert version.status_code == 201, version.json
    return {"slug": "shop", "admin": admin, "writer": make_key("shop", "consent:write,consent:read")}


def code_for(app, request_id: str) -> str:
    """The latest verification code mailed for a request, read from the encrypted mail outbox."""
    from sqlalchemy import select

    from service.mail.message import read
    from service.mail.models import MailMessage

    with app.extensions["db"].sessions() as session:
        rows = session.scalars(select(MailMessage).where(
            MailMessage.ref == request_id, MailMessage.kind == "verification_code")).all()
    assert rows, "no code was mailed for the request"
    latest = max(rows, key=lambda r: (r.created_at, r.id))
    found = re.search(r"(?<![0-9A-Za-z_-])([0-9]{6})(?![0-9A-Za-z_-])", read(app.extensions["keys"], latest).text)
    assert found, "the email holds no code"
    return found.group(1)


@pytest.fixture
def estate_app(base_config, tmp_path):
    """The app on the demo estate (SQL and files stores, seeded people), jobs in-process, with tenant `shop`."""
    from service.tenancy import create_app_tenant
    from tests.dsar.conftest import _app, write_config

    apps = _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")})
    made = next(apps)
    with made.extensions["db"].session() as session:
        create_app_tenant(session, "shop")
    yield made
    next(apps, None)


@pytest.fixture
def mint(client) -> Callable[..., Any]:
    """mint(headers, subject_id, **extra) -> the API's response to POST /v1/portal/links."""

    def call(headers: dict[str, str], subject_id: str, **extra: Any) -> Any:
        return client.post("/v1/portal/links", json={"subject_id": subject_id, **extra}, headers=headers)

    return call


@pytest.fixture
def sign_in(app, mint) -> Callable[..., Any]:
    """sign_in(headers, subject_id) -> a test client with a privacy-centre session for that subject."""

    def open_as(headers: dict[str, str], subject_id: str, **extra: Any) -> Any:
        minted = mint(headers, subject_id, **extra)
        assert minted.status_code == 201, minted.json
        browser = app.test_client()
        opened = browser.get(urlsplit(minted.json["url"]).path)
        assert opened.status_code == 303, opened.text
        return browser

    return open_as
