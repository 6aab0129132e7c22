"""Signing in to the console in Chromium: an admin sets up through the one-time link (password, then an
authenticator read off the page) and signs in with password and code; five wrong passwords lock an account, so
the right one is refused too; signing out ends the session. Every page on the way passes axe."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pyotp
from playwright.sync_api import expect

from tests.browser.conftest import network_of
from tests.browser.console.conftest import sign_in
from tests.browser.portal.conftest import submit

PASSWORD = "violet staple orbit lantern"


def test_admin_sets_up_with_the_link_and_signs_in_with_password_and_code(live_server, new_page, check_page):
    made = live_server.app.test_cli_runner().invoke(args=["operators", "create", "ada@example.com", "--role",
                                                          "admin"])
    assert made.exit_code == 0, made.output
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{live_server.url}/console/setup/")

    page = new_page()
    page.goto(urlsplit(link).path)
    assert page.url == f"{live_server.url}/console/setup"  # the token left the address bar
    check_page(page)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    network_of(page).reset()  # check_page weighs what follows: the answer and the page it leads to
    submit(page, "Save the password")
    assert page.url.endswith("/console/setup/authenticator")
    expect(page.get_by_role("button", name="Skip: password only")).to_have_count(0)  # an admin must enrol
    check_page(page)
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    submit(page, "Confirm")

    browser = new_page()
    browser.goto("/console/requests")
    assert urlsplit(browser.url).path == "/console/signin"  # not signed in: to the form
    check_page(browser)
    browser.get_by_label("Email").fill("ada@example.com")
    browser.get_by_label("Password").fill(PASSWORD)
    network_of(browser).reset()
    refused = submit(browser, "Sign in")  # the password alone is not enough for an admin
    assert refused.status == 401
    expect(browser.get_by_role("alert")).to_contain_text("The email, password or code is not right")
    check_page(browser)
    browser.get_by_label("Password").fill(PASSWORD)
    # The set-up used this time step's code, and a code is accepted once: the next step's (one step of drift).
    browser.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    answer = submit(browser, "Sign in")
    assert answer.status == 200 and urlsplit(browser.url).path == "/console/requests"  # back where it was sent
    expect(browser.get_by_role("navigation", name="Console")).to_contain_text("ada@example.com (")


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(live_server, operator, page):
    agent = operator("agent")
    for _ in range(5):
        assert sign_in(page, agent, password="not the password at all").status == 401
    refused = sign_in(page, agent)  # the right password, while locked
    assert refused.status == 401
    expect(page.get_by_role("alert")).to_contain_text("After 5 wrong attempts an account is locked for 15 minutes")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.goto("/console/")
    assert urlsplit(page.url).path == "/console/signin"  # no session was opened


def test_sign_out_ends_the_session(live_server, signed_in):
    page = signed_in("viewer")
    kept = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/signin"))
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    # The old cookie, replayed by someone who copied it, no longer opens the console.
    other = page.context.browser.new_context(base_url=live_server.url)
    other.add_cookies(kept)
    replay = other.new_page()
    replay.goto("/console/requests")
    assert urlsplit(replay.url).path == "/console/signin"
    other.close()
