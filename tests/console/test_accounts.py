"""Operators and sign-in: the CLI's set-up link, password rules, the authenticator (required for admins), lock-out,
the same answer for an unknown email, idle expiry, sign-out and sign-out everywhere, disabling, the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from sqlalchemy import select, update

from console.models import Operator, OperatorSession, SetupToken
from service.audit import AuditEvent
from service.db import utcnow
from tests.console.conftest import PASSWORD, create_operator, operator_id, secret_on, set_up, sign_in, totp_code
from tests.portal.conftest import csrf_token


def _audit(app, action: str) -> list[AuditEvent]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _open_setup(app, path):
    browser = app.test_client()
    assert browser.get(path).status_code == 303
    return browser


def _choose(browser, password, again=None):
    page = browser.get("/console/setup")
    return browser.post("/console/setup", data={"csrf_token": csrf_token(page.text), "password": password,
                                                "again": password if again is None else again})


def test_the_cli_creates_lists_and_disables_operators(app):
    path = create_operator(app, "Ann@Example.com", "agent")
    assert re.fullmatch(r"/console/setup/[A-Za-z0-9_-]{43}", path)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["operators", "list"])
    assert "ann@example.com\tagent\tall apps\tset-up pending" in listed.stdout
    again = runner.invoke(args=["operators", "create", "ann@example.com", "--role", "viewer"])
    assert again.exit_code != 0 and "already exists" in again.output
    assert runner.invoke(args=["operators", "create", "b@example.com", "--role", "boss"]).exit_code != 0
    assert runner.invoke(args=["operators", "create", "not-an-email", "--role", "viewer"]).exit_code != 0
    set_up(app, path)
    assert "ann@example.com\tagent\tall apps\tactive\tpassword only" in runner.invoke(
        args=["operators", "list"]).stdout
    assert runner.invoke(args=["operators", "disable", "ann@example.com"]).exit_code == 0
    assert "\tdisabled\t" in runner.invoke(args=["operators", "list"]).stdout
    assert sign_in(app, "ann@example.com").status_code == 401


def test_set_up_refuses_short_common_and_mismatched_passwords_then_accepts_a_good_one(app):
    path = create_operator(app, "ann@example.com", "viewer")
    browser = _open_setup(app, path)
    short = _choose(browser, "Tr0ub4dor&3")
    assert short.status_code == 422 and "at least 12 characters" in short.text
    assert 'aria-invalid="true"' in short.text and 'id="password-error"' in short.text
    for common in ("password1234", "Password123!", "qwertyuiop123", "aaaaaaaaaaaaaaa"):
        refused = _choose(browser, common)
        assert refused.status_code == 422 and "too common" in refused.text, common
    mismatch = _choose(browser, PASSWORD, again=PASSWORD + "x")
    assert mismatch.status_code == 422 and "not the same" in mismatch.text
    assert _choose(browser, PASSWORD).status_code == 303
    page = browser.get("/console/setup/authenticator")
    assert "Skip: password only" in page.text  # optional for a viewer
    assert browser.post("/console/setup/skip", data={"csrf_token": csrf_token(page.text)}).status_code == 303
    assert sign_in(app, "ann@example.com").status_code == 303
    with app.extensions["db"].sessions() as session:
        stored = session.scalar(select(Operator.password_hash).where(Operator.email == "ann@example.com"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # The link is used up: a second visit is refused with a page, not an error.
    assert app.test_client().get(path).status_code == 410


def test_an_admin_must_enrol_an_authenticator_and_sign_in_with_its_code(app):
    path = create_operator(app, "boss@example.com", "admin")
    browser = _open_setup(app, path)
    assert _choose(browser, PASSWORD).status_code == 303
    page = browser.get("/console/setup/authenticator")
    assert "Skip: password only" not in page.text and 'src="data:image/svg+xml;base64,' in page.text
    secret = secret_on(page.text)
    assert f"otpauth://totp/Privacy%20console:boss%40example.com?secret={secret}" in page.text
    skipped = browser.post("/console/setup/skip", data={"csrf_token": csrf_token(page.text)})
    assert skipped.status_code == 422
    wrong = browser.post("/console/setup/authenticator", data={"csrf_token": csrf_token(page.text),
                                                               "code": "000000"})
    assert wrong.status_code == 422 and "not right" in wrong.text
    assert secret_on(wrong.text) == secret  # the same key until it is confirmed
    # Not set up yet: the password alone does not sign in.
    assert sign_in(app, "boss@example.com").status_code == 401
    now_code = pyotp.TOTP(secret).now()
    done = browser.post("/console/setup/authenticator", data={"csrf_token": csrf_token(page.text),
                                                              "code": now_code})
    assert done.status_code == 303
    assert sign_in(app, "boss@example.com").status_code == 401  # no code
    assert sign_in(app, "boss@example.com", code=now_code).status_code == 401  # a used code is not replayed
    assert sign_in(app, "boss@example.com", PASSWORD + "x", code=totp_code(secret)).status_code == 401
    browser = app.test_client()
    assert sign_in(app, "boss@example.com", code=totp_code(secret), browser=browser).status_code == 303
    assert browser.get("/console/").status_code == 200
    with app.extensions["db"].sessions() as session:
        row = session.scalar(select(Operator).where(Operator.email == "boss@example.com"))
    assert row.totp_secret is not None and secret.encode() not in row.totp_secret  # encrypted


def test_set_up_links_expire_and_unknown_ones_are_refused(app):
    path = create_operator(app, "ann@example.com", "agent")
    assert app.test_client().get("/console/setup/" + "x" * 43).status_code == 404
    with app.extensions["db"].session() as session:
        session.execute(update(SetupToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = app.test_client().get(path)
    assert expired.status_code == 410 and "24 hours" in expired.text
    # `operators reset` issues a fresh one.
    result = app.test_cli_runner().invoke(args=["operators", "reset", "ann@example.com"])
    assert result.exit_code == 0
    set_up(app, "/console/setup/" + result.stdout.strip().rsplit("/", 1)[1])
    assert sign_in(app, "ann@example.com").status_code == 303


def test_five_failures_lock_the_account_for_fifteen_minutes(app):
    set_up(app, create_operator(app, "ann@example.com", "agent"))
    for _ in range(5):
        assert sign_in(app, "ann@example.com", "wrong password!").status_code == 401
    locked = sign_in(app, "ann@example.com")  # the right password, but locked
    assert locked.status_code == 401
    ident = operator_id(app, "ann@example.com")
    [lock] = _audit(app, "console.operator_locked")
    assert lock.actor == f"operator:{ident}" and lock.resource_id == str(ident)
    with app.extensions["db"].session() as session:
        until = session.scalar(select(Operator.locked_until).where(Operator.id == ident))
        assert timedelta(minutes=14) < until - utcnow() <= timedelta(minutes=15)
        session.execute(update(Operator).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert sign_in(app, "ann@example.com").status_code == 303
    failures = _audit(app, "console.sign_in_failed")
    assert [f.details["reason"] for f in failures] == ["password"] * 5 + ["locked"]
    assert all("ann@" not in str(e.details) for e in failures)


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(app):
    set_up(app, create_operator(app, "ann@example.com", "agent"))
    known = sign_in(app, "ann@example.com", "wrong password!")
    unknown = sign_in(app, "nobody@example.com", "wrong password!")
    assert known.status_code == unknown.status_code == 401

    def body(r, email):
        return re.sub(r'name="csrf_token" value="[^"]+"', "", r.text).replace(email, "EMAIL")

    assert body(known, "ann@example.com") == body(unknown, "nobody@example.com")
    [failure] = [e for e in _audit(app, "console.sign_in_failed") if e.actor == "anonymous"]
    assert "nobody" not in str(failure.details) and failure.resource_id == "unknown"


def test_sessions_expire_after_thirty_idle_minutes(app, make_operator):
    op = make_operator("viewer")
    assert op.browser.get("/console/requests").status_code == 200
    with app.extensions["db"].session() as session:
        session.execute(update(OperatorSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    expired = op.browser.get("/console/requests")
    assert expired.status_code == 303 and "/console/signin?next=/console/requests" in expired.headers["Location"]
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(OperatorSession.ended_at)) is not None


def test_sign_out_and_sign_out_everywhere(app, make_operator):
    op = make_operator("agent")
    other = app.test_client()
    assert sign_in(app, op.email, browser=other).status_code == 303
    third = app.test_client()
    assert sign_in(app, op.email, browser=third).status_code == 303
    page = third.get("/console/account")
    assert third.post("/console/signout", data={"csrf_token": csrf_token(page.text)}).status_code == 303
    assert third.get("/console/").status_code == 303
    assert other.get("/console/").status_code == 200  # signing out here leaves the other browser signed in
    page = op.browser.get("/console/account")
    ended = op.browser.post("/console/signout-everywhere", data={"csrf_token": csrf_token(page.text)})
    assert ended.status_code == 303
    assert other.get("/console/").status_code == 303  # the other browser is signed out too
    assert op.browser.get("/console/").status_code == 303
    [entry] = _audit(app, "console.signed_out_everywhere")
    assert entry.actor == f"operator:{op.id}" and entry.details == {"sessions": 2}


def test_disabling_ends_the_sessions_at_once(app, make_operator):
    op = make_operator("agent")
    assert app.test_cli_runner().invoke(args=["operators", "disable", op.email]).exit_code == 0
    assert op.browser.get("/console/").status_code == 303


def test_forms_without_a_csrf_token_are_refused(app):
    set_up(app, create_operator(app, "ann@example.com", "agent"))
    browser = app.test_client()
    refused = browser.post("/console/signin", data={"email": "ann@example.com", "password": PASSWORD})
    assert refused.status_code == 400


def test_sign_in_returns_to_the_page_asked_for_and_never_elsewhere(app):
    set_up(app, create_operator(app, "ann@example.com", "agent"))
    browser = app.test_client()
    asked = browser.get("/console/requests?state=open")
    assert asked.status_code == 303
    page = browser.get(asked.headers["Location"])
    back = browser.post("/console/signin", data={"csrf_token": csrf_token(page.text), "email": "ann@example.com",
                                                 "password": PASSWORD, "next": "/console/requests?state=open"})
    assert back.headers["Location"] == "/console/requests?state=open"
    other = app.test_client()
    page = other.get("/console/signin")
    away = other.post("/console/signin", data={"csrf_token": csrf_token(page.text), "email": "ann@example.com",
                                               "password": PASSWORD, "next": "//evil.example/"})
    assert away.headers["Location"] == "/console/"


def test_every_step_is_audited_by_operator_id_without_the_email(app, make_operator):
    op = make_operator("admin")
    with app.extensions["db"].sessions() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "operator")))
    actions = {e.action for e in events}
    assert {"console.operator_created", "console.setup_link_issued", "console.totp_enrolled",
            "console.setup_completed", "console.signed_in"} <= actions
    assert all(op.email not in str(e.details) and op.email not in e.actor for e in events)
    assert {e.actor for e in events if e.action == "console.signed_in"} == {f"operator:{op.id}"}
