"""Fixtures of the console's browser tests: operators made ready by the console's own set-up steps
(console.demo.ready_operator), signed in through the form in Chromium, and requests made through the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from console.demo import Ready, ready_operator

# Fixtures of the privacy centre's browser tests: check_page (weight, other hosts, axe), and for an open-web
# request the test's SMTP server, the demo estate and jobs on RQ (rq_app, used by rq_live_server).
from tests.browser.portal.conftest import check_page, submit  # noqa: F401
from tests.browser.portal.test_request_flow import rq_app, smtp, worker_config  # noqa: F401


@dataclass(frozen=True)
class Operator:
    email: str
    role: str
    ready: Ready


def make_operator(app: Flask, email: str, role: str) -> Operator:
    with app.extensions["db"].session() as session:
        ready = ready_operator(session, app.extensions["keys"], email, role, by="test")
    return Operator(email, role, ready)


def code_now(secret: str) -> str:
    """The authenticator's code of the current time step (ready_operator used the previous step's)."""
    return pyotp.TOTP(secret).now()


def sign_in(page: Page, who: Operator, password: str | None = None, code: str | None = None) -> Any:
    """Fill the sign-in form as a person does and submit it; the response of the page it leads to."""
    page.goto("/console/signin")
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(password if password is not None else who.ready.password)
    if code is not None or who.ready.totp_secret:
        page.get_by_label("Authenticator code").fill(code if code is not None else code_now(who.ready.totp_secret))
    return submit(page, "Sign in")


@pytest.fixture
def operator(live_server: Any) -> Callable[..., Operator]:
    """operator("agent") -> an operator of the live server's app, ready to sign in."""
    made = iter(range(1, 100))

    def make(role: str, email: str | None = None) -> Operator:
        return make_operator(live_server.app, email or f"{role}{next(made)}@example.com", role)

    return make


@pytest.fixture
def signed_in(new_page: Callable[..., Page], operator: Callable[..., Operator]) -> Callable[..., Page]:
    """signed_in("agent") -> a desktop page of a new operator of that role, signed in, on the overview."""

    def open_as(role: str, **options: Any) -> Page:
        page = new_page(**options)
        answer = sign_in(page, operator(role))
        assert answer.status == 200, answer.status
        expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
        return page

    return open_as
