"""The shared web layer: page headers, HTML errors beside the API's JSON, languages, CSRF and the session cookie."""

from __future__ import annotations

import re

PAGE = "/privacy/no-such-app/"  # a page path that renders the shared error page without any app


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def test_pages_carry_strict_security_headers_and_the_api_does_not_change(client):
    page = client.get(PAGE)
    assert page.status_code == 404 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp  # nothing inline, nothing from another host
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    api = client.get("/v1/no-such-endpoint")
    assert api.status_code == 404 and api.is_json and "Content-Security-Policy" not in api.headers


def test_error_pages_are_html_in_the_person_s_language(client):
    english = client.get(PAGE, headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.text and "Not found" in english.text
    chinese = client.get(PAGE, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-Hans">' in chinese.text
    assert "Not found" not in chinese.text  # the catalogue translates it
    assert "Traceback" not in english.text and "Traceback" not in chinese.text


def test_the_language_switch_is_remembered_and_only_returns_to_this_site(client):
    token = csrf_token(client.get(PAGE).text)
    switched = client.post("/lang", data={"csrf_token": token, "lang": "zh_Hans", "next": "/privacy/x/?a=1"})
    assert switched.status_code == 303 and switched.headers["Location"] == "/privacy/x/?a=1"
    cookie = client.get_cookie("lang")
    assert cookie is not None and cookie.value == "zh_Hans" and cookie.http_only
    assert '<html lang="zh-Hans">' in client.get(PAGE, headers={"Accept-Language": "en"}).text
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        away = client.post("/lang", data={"csrf_token": token, "lang": "en", "next": elsewhere})
        assert away.status_code == 303 and away.headers["Location"] == "/", elsewhere


def test_a_form_without_its_csrf_token_is_refused_with_a_page(client):
    client.get(PAGE)
    refused = client.post("/lang", data={"lang": "zh_Hans", "next": "/"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "The form could not be accepted" in refused.text
    assert client.get_cookie("lang") is None
    forged = client.post("/lang", data={"lang": "zh_Hans", "csrf_token": "forged"})
    assert forged.status_code == 400


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app):
    plain = app.test_client()
    plain.get(PAGE)
    cookie = plain.get_cookie("privacy_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    secure = app.test_client()
    secure.get(PAGE, base_url="https://localhost")
    cookie = secure.get_cookie("privacy_session", domain="localhost")
    assert cookie is not None and cookie.secure


def test_the_stylesheet_is_cacheable_and_self_contained(client):
    css = client.get("/static/pages/site.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "url(" not in css.text and "@import" not in css.text  # no fonts or images fetched from anywhere
    assert "no-store" not in css.headers.get("Cache-Control", "")
