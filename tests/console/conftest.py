"""Fixtures of the console's tests: operators created through the CLI and set up through their link, signed-in
test clients (CSRF tokens read from the pages), authenticator codes from pyotp, an app on the demo estate."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.dsar.conftest import inline_app_with  # noqa: F401 - the dsar tests' fixture, for a store that fails
from tests.portal.conftest import csrf_token

PASSWORD = "violet staple orbit lantern"


@dataclass
class Op:
    """An operator of the tests: its email, password, authenticator secret (or None) and a signed-in browser."""

    id: int
    email: str
    role: str
    password: str
    secret: str | None
    browser: FlaskClient | None = None


def totp_code(secret: str, step: int = 1) -> str:
    """A code of the authenticator `step` time steps ahead: codes are accepted once, and one step of drift is
    allowed, so a test that enrols and then signs in uses the next step's code."""
    return pyotp.TOTP(secret).at(time.time() + 30 * step)


def create_operator(app: Flask, email: str, role: str, apps: tuple[str, ...] = ()) -> str:
    """`flask operators create` -> the set-up link's path."""
    args = ["operators", "create", email, "--role", role]
    for slug in apps:
        args += ["--app", slug]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith(app.config["SETTINGS"].public_url + "/console/setup/")
    return urlsplit(url).path


def secret_on(html: str) -> str:
    found = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', html)
    assert found, "the page shows no set-up key"
    return found.group(1).replace(" ", "")


def set_up(app: Flask, path: str, password: str = PASSWORD, totp: bool = False) -> str | None:
    """Open the set-up link, choose `password`, then enrol an authenticator (or skip); its secret or None."""
    browser = app.test_client()
    opened = browser.get(path)
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/console/setup")
    page = browser.get("/console/setup")
    saved = browser.post("/console/setup", data={"csrf_token": csrf_token(page.text), "password": password,
                                                 "again": password})
    assert saved.status_code == 303, saved.text
    page = browser.get("/console/setup/authenticator")
    if not totp:
        done = browser.post("/console/setup/skip", data={"csrf_token": csrf_token(page.text)})
        assert done.status_code == 303, done.text
        return None
    secret = secret_on(page.text)
    done = browser.post("/console/setup/authenticator", data={"csrf_token": csrf_token(page.text),
                                                              "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 303, done.text
    return secret


def sign_in(app: Flask, email: str, password: str = PASSWORD, code: str | None = None,
            browser: FlaskClient | None = None) -> Any:
    """Submit the sign-in form as a browser does; the response (303 on success)."""
    browser = browser or app.test_client()
    page = browser.get("/console/signin")
    return browser.post("/console/signin", data={"csrf_token": csrf_token(page.text), "email": email,
                                                 "password": password, "code": code or ""})


def operator_id(app: Flask, email: str) -> int:
    from sqlalchemy import select

    from console.models import Operator

    with app.extensions["db"].sessions() as session:
        return session.scalar(select(Operator.id).where(Operator.email == email))


@pytest.fixture
def make_operator(app: Flask) -> Callable[..., Op]:
    """make_operator("agent", apps=("shop",)) -> an operator set up and signed in (admins with an authenticator)."""
    made = iter(range(1, 1000))

    def make(role: str, apps: tuple[str, ...] = (), app_: Flask | None = None, email: str | None = None) -> Op:
        flask_app = app_ or app
        email = email or f"{role}{next(made)}@example.com"
        path = create_operator(flask_app, email, role, apps)
        secret = set_up(flask_app, path, totp=role == "admin")
        browser = flask_app.test_client()
        answer = sign_in(flask_app, email, code=totp_code(secret) if secret else None, browser=browser)
        assert answer.status_code == 303, answer.text
        return Op(operator_id(flask_app, email), email, role, PASSWORD, secret, browser)

    return make


def post_form(browser: FlaskClient, page_url: str, action_url: str, data: dict[str, Any]) -> Any:
    """GET `page_url` for its CSRF token, then POST `data` to `action_url`."""
    page = browser.get(page_url)
    assert page.status_code == 200, page.text
    return browser.post(action_url, data={"csrf_token": csrf_token(page.text), **data})


@pytest.fixture
def estate(base_config: dict[str, str], tmp_path: Any) -> Iterator[Flask]:
    """The app on the demo estate (SQL and files stores, seeded people), jobs in-process, apps `shop` and
    `other`: a verified request runs to its end within the request that verified it."""
    from service.tenancy import create_app_tenant
    from tests.dsar.conftest import _app, write_config

    apps = _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")})
    made = next(apps)
    with made.extensions["db"].session() as session:
        create_app_tenant(session, "shop")
        create_app_tenant(session, "other")
    made.extensions["page_limiter"].reset()
    yield made
    made.extensions["page_limiter"].reset()
    next(apps, None)
