"""Fixtures of the privacy centre's browser tests: app `shop` with the demo's policy (what `make run` shows), links
an app mints over real HTTP, and what every page is checked for (weight, other hosts, axe)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, Response

from portal.cli import DEMO_POLICY, DEMO_TEXT
from tests.browser.conftest import network_of
from tests.browser.helpers import check_axe

SLUG = "shop"
CENTRE = f"/privacy/{SLUG}"


@dataclass(frozen=True)
class Shop:
    """App `shop` ("Shop") on the live server, with the demo's policy `app`, version 1 in effect."""

    url: str  # the live server
    admin: dict[str, str]
    writer: dict[str, str]

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        """The JSON API over real HTTP, as a product's backend calls it."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={**headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read() or b"null")

    def link(self, subject_id: str, **extra: Any) -> str:
        """A sign-in link to the privacy centre for `subject_id`, minted as the product does."""
        status, body = self.call("POST", "/v1/portal/links", self.writer, {"subject_id": subject_id, **extra})
        assert status == 201, body
        assert body["url"].startswith(f"{self.url}{CENTRE}/link/"), body["url"]
        return body["url"]

    def publish(self, version: str, text: str, material: bool = True) -> None:
        status, body = self.call("POST", "/v1/policies/app/versions", self.admin,
                                 {"version": version, "text": text, "material": material})
        assert status == 201, body

    def status(self, subject_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/v1/consents/status?subject_id={subject_id}&policy=app", self.writer)
        assert status == 200, body
        return body


def make_shop(app: Flask, url: str) -> Shop:
    """Create app `shop` (keys: admin; consent read+write and dsar:submit) with the demo's policy, version 1."""
    from service.tenancy import create_app_tenant, create_key

    with app.extensions["db"].session() as session:
        create_app_tenant(session, SLUG, "Shop")
        _, admin = create_key(session, SLUG, frozenset({"admin"}))
        _, writer = create_key(session, SLUG, frozenset({"consent:read", "consent:write", "dsar:submit"}))
    shop = Shop(url, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {writer}"})
    status, body = shop.call("POST", "/v1/policies", shop.admin, DEMO_POLICY)
    assert status == 201, body
    status, body = shop.call("POST", "/v1/policies/app/versions", shop.admin, {
        "version": "1", "effective_at": "2020-01-01T00:00:00Z", "text": DEMO_TEXT, "material": True})
    assert status == 201, body
    return shop


@pytest.fixture
def shop(live_server: Any) -> Shop:
    """App `shop` on the live server (jobs in-process)."""
    return make_shop(live_server.app, live_server.url)


def submit(page: Page, button: str) -> Response:
    """Press the submit button named `button` and wait for the page it leads to (after any redirect)."""
    with page.expect_navigation(wait_until="load") as navigation:
        page.get_by_role("button", name=button, exact=True).click()
    return navigation.value


@pytest.fixture
def check_page() -> Callable[..., None]:
    """check_page(page): the page as loaded since its network guard's last reset weighs under 100 KB, asked no other
    host, and axe finds no serious or critical violation on it."""

    def check(page: Page) -> None:
        network = network_of(page)
        network.assert_local()
        network.assert_weight_below()
        check_axe(page)
        # A page answered with an error status is logged as a failed load; anything else (a CSP violation, a
        # script) is a defect.
        errors = [e for e in network.console_errors if "the server responded with a status of" not in e]
        assert not errors, errors

    return check
