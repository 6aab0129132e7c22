"""`flask operators demo`: the printed email and password sign in (an admin's with the printed authenticator key),
and running it again replaces the password."""

from __future__ import annotations

import re

import pyotp
import pytest
from flask import Flask

from tests.console.conftest import sign_in, totp_code


def run_demo(app: Flask, *args: str) -> dict[str, str]:
    result = app.test_cli_runner().invoke(args=["operators", "demo", *args])
    assert result.exit_code == 0, result.output
    found = dict(re.findall(r"^\s+(email|password|authenticator key)[^:]*:\s+(\S+)$", result.stdout, re.M))
    assert {"email", "password"} <= set(found), result.stdout
    assert f"{app.config['SETTINGS'].public_url}/console/" in result.stdout
    return found


@pytest.mark.usefixtures("database_url")
def test_demo_agent_signs_in_with_the_printed_password_and_a_rerun_replaces_it(app: Flask) -> None:
    first = run_demo(app)
    assert first["email"] == "demo-agent@example.com" and "authenticator key" not in first
    assert sign_in(app, first["email"], first["password"]).status_code == 303
    second = run_demo(app)
    assert second["password"] != first["password"]
    assert sign_in(app, first["email"], first["password"]).status_code == 401
    browser = app.test_client()
    assert sign_in(app, second["email"], second["password"], browser=browser).status_code == 303
    assert browser.get("/console/requests").status_code == 200
    listed = app.test_cli_runner().invoke(args=["operators", "list"]).stdout
    assert re.search(r"demo-agent@example.com\tagent\tall apps\tactive\tpassword only", listed)


@pytest.mark.usefixtures("database_url")
def test_demo_admin_needs_the_printed_authenticator_key(app: Flask) -> None:
    found = run_demo(app, "--role", "admin", "--email", "boss@example.com")
    secret = found["authenticator key"]
    assert sign_in(app, "boss@example.com", found["password"]).status_code == 401  # no code
    assert sign_in(app, "boss@example.com", found["password"], code=pyotp.TOTP(secret).now()).status_code == 303
    assert sign_in(app, "boss@example.com", found["password"], code=totp_code(secret)).status_code == 303


@pytest.mark.usefixtures("database_url")
def test_demo_keeps_an_existing_operator_s_role(app: Flask) -> None:
    run_demo(app)
    result = app.test_cli_runner().invoke(args=["operators", "demo", "--role", "viewer"])
    assert result.exit_code != 0 and "exists with role 'agent'" in result.output
