"""Links into the privacy centre: minted by an app's key, opened once, for that app only, leaving no token behind."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from service import weblinks
from service.audit import AuditEvent
from service.db import utcnow
from service.pages import limits


def path(url: str) -> str:
    return urlsplit(url).path


def test_an_app_mints_a_link_with_consent_write_or_dsar_submit_only(client, make_key, mint, portal_app):
    for scopes in ("consent:write", "dsar:submit", "admin"):
        minted = mint(make_key("shop", scopes), "user-1")
        assert minted.status_code == 201, (scopes, minted.json)
        assert minted.json["url"].startswith("http://127.0.0.1:5000/privacy/shop/link/")
    assert mint(make_key("shop", "consent:read,dsar:manage"), "user-1").status_code == 403
    assert client.post("/v1/portal/links", json={"subject_id": "user-1"}).status_code == 401


def test_bad_link_requests_name_the_field(mint, portal_app):
    writer = portal_app["writer"]
    cases = {"locale": {"locale": "fr-FR"}, "return_url": {"return_url": "javascript:alert(1)"},
             "subject_id": {"subject_id": "x" * 300}}
    for field, extra in cases.items():
        body = {"subject_id": "user-1", **extra}
        answer = mint(writer, body.pop("subject_id"), **body)
        assert answer.status_code == 422 and field in answer.json["errors"]["json"], (field, answer.json)
    assert mint(writer, "user\x00one").status_code == 422


def test_opening_a_link_signs_in_once_and_leaves_the_token_behind(app, mint, portal_app):
    minted = mint(portal_app["writer"], "user-1", locale="zh-CN", return_url="https://shop.example/account")
    token = path(minted.json["url"]).rsplit("/", 1)[1]
    browser = app.test_client()
    opened = browser.get(path(minted.json["url"]))
    assert opened.status_code == 303 and opened.headers["Location"] == "/privacy/shop/consents"
    assert token not in opened.headers["Location"]
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    cookie = browser.get_cookie("privacy_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert b"user-1" not in cookie.value.encode()  # the subject id is sealed, not merely signed
    assert browser.get_cookie("lang").value == "zh_Hans"  # the app's locale for the person
    page = browser.get("/privacy/shop/consents")
    assert page.status_code == 200 and "Demo app privacy policy" in page.text
    assert "https://shop.example/account" in page.text  # the way back to the app
    again = app.test_client().get(path(minted.json["url"]))
    assert again.status_code == 410 and again.mimetype == "text/html" and "already been opened" in again.text


def test_unknown_and_expired_links_get_a_page_saying_so(app, client, portal_app):
    with app.extensions["db"].session() as session:
        app_id = session.scalar(select(weblinks.WebLink.app_id).limit(1)) or _app_id(app, "shop")
        token, _ = weblinks.mint(session, app.extensions["keys"], kind=weblinks.SUBJECT, app_id=app_id,
                                 subject_id="user-1", now=utcnow() - timedelta(minutes=11))
    expired = client.get(f"/privacy/shop/link/{token}")
    assert expired.status_code == 410 and "expired" in expired.text
    unknown = client.get("/privacy/shop/link/" + "A" * 43)
    assert unknown.status_code == 404 and "not valid" in unknown.text and "Traceback" not in unknown.text


def _app_id(app, slug: str) -> int:
    from service.tenancy import App

    with app.extensions["db"].sessions() as session:
        return session.scalar(select(App.id).where(App.slug == slug))


def test_another_app_s_link_neither_opens_here_nor_is_used_up(app, make_key, mint, portal_app):
    other = mint(make_key("other", "consent:write"), "user-1")
    token = path(other.json["url"]).rsplit("/", 1)[1]
    assert app.test_client().get(f"/privacy/shop/link/{token}").status_code == 404
    assert app.test_client().get(path(other.json["url"])).status_code == 303  # still good on its own app


def test_a_session_is_bound_to_its_app_and_expires_when_idle(app, client, make_key, sign_in, portal_app):
    make_key("other", "admin")
    browser = sign_in(portal_app["writer"], "user-1")
    assert browser.get("/privacy/shop/consents").status_code == 200
    elsewhere = browser.get("/privacy/other/consents")
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/privacy/other/"
    with browser.session_transaction() as cookie:
        walked_away = dict(cookie["privacy"])
        walked_away["t"] -= 31 * 60  # the person walked away half an hour ago
        cookie["privacy"] = walked_away
    idle = browser.get("/privacy/shop/consents")
    assert idle.status_code == 303 and idle.headers["Location"] == "/privacy/shop/"


def test_minting_and_opening_are_audited_without_personal_data(app, sign_in, portal_app):
    sign_in(portal_app["writer"], "alice@example.com")
    with app.extensions["db"].sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action.like("portal.%"))).all()
    assert [r.action for r in rows] == ["portal.link_minted", "portal.link_opened"]
    assert rows[1].actor.startswith("subject:") and rows[0].actor.startswith("key:")
    assert all("alice" not in f"{r.actor}{r.resource_id}{r.details}" for r in rows)


def test_link_exchange_is_rate_limited_per_ip_with_a_page(app, portal_app):
    limits.reset(app)
    browser = app.test_client()
    answers = [browser.get("/privacy/shop/link/" + "B" * 43).status_code for _ in range(31)]
    assert answers[:30] == [404] * 30 and answers[30] == 429
    limited = browser.get("/privacy/shop/link/" + "B" * 43)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.mimetype == "text/html" and "Too many attempts" in limited.text
    limits.reset(app)


def test_the_session_cookie_is_resent_only_when_its_idle_clock_moves(sign_in, portal_app):
    browser = sign_in(portal_app["writer"], "user-1")
    browser.get("/privacy/shop/consents")  # the first page adds the form's CSRF secret to the session
    quiet = browser.get("/privacy/shop/consents")
    assert quiet.status_code == 200 and "Set-Cookie" not in quiet.headers  # not re-signed on every page
    with browser.session_transaction() as cookie:
        earlier = dict(cookie["privacy"])
        earlier["t"] -= 5 * 60  # last seen five minutes ago: still signed in, and the clock moves on
        cookie["privacy"] = earlier
    moved = browser.get("/privacy/shop/consents")
    assert moved.status_code == 200 and "privacy_session=" in moved.headers["Set-Cookie"]
