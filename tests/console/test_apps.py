"""Apps and keys in the console (admins only): an app created, a key created with scopes (the secret shown once)
that works on the API, revoked with a reason and then refused; audited by operator id; an admin limited to an
app cannot create apps, grant company-wide scopes or touch another app's keys."""

from __future__ import annotations

import re

from sqlalchemy import select

from service.audit import AuditEvent
from service.tenancy import ApiKey, App
from tests.console.conftest import post_form


def actors(app, action: str) -> list[str]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(AuditEvent.actor).where(AuditEvent.action == action)))


def test_an_admin_creates_an_app_and_a_key_that_works_then_revokes_it(app, make_operator, client):
    admin = make_operator("admin")
    bad = post_form(admin.browser, "/console/apps", "/console/apps", {"slug": "Bad Slug!"})
    assert bad.status_code == 422 and 'id="slug-error"' in bad.text
    made = post_form(admin.browser, "/console/apps", "/console/apps", {"slug": "garden", "name": "Garden"})
    assert made.status_code == 303
    taken = post_form(admin.browser, "/console/apps", "/console/apps", {"slug": "garden"})
    assert taken.status_code == 422 and "exists already" in taken.text
    no_scope = post_form(admin.browser, "/console/apps", "/console/keys", {"app": "garden", "label": "x"})
    assert no_scope.status_code == 422 and 'id="scopes-error"' in no_scope.text
    page = admin.browser.get("/console/apps").text
    from tests.portal.conftest import csrf_token

    key = admin.browser.post("/console/keys", data={"csrf_token": csrf_token(page), "app": "garden",
                                                    "scopes": ["dsar:manage", "consent:read"], "label": "crm"})
    assert key.status_code == 201
    secret = re.search(r'<code class="secret">(psk_[^<]+)</code>', key.text).group(1)
    assert secret not in admin.browser.get("/console/apps").text  # shown once
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/holds", headers=headers).status_code == 200
    with app.extensions["db"].sessions() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.label == "crm"))
        assert row.scopes == "consent:read,dsar:manage"
    assert actors(app, "app.created") == [f"operator:{admin.id}"]
    assert actors(app, "key.created") == [f"operator:{admin.id}"]
    revoke = f"/console/keys/{row.key_id}/revoke"
    assert post_form(admin.browser, revoke, revoke, {"reason": "x" * 2001}).status_code == 422
    assert post_form(admin.browser, revoke, revoke, {"reason": "leaked in a ticket"}).status_code == 303
    app.extensions["key_cache"].clear()
    assert client.get("/v1/holds", headers=headers).status_code == 401
    assert actors(app, "key.revoked") == [f"operator:{admin.id}"]


def test_an_admin_limited_to_an_app_keeps_to_it(app, make_operator, make_key):
    make_key("shop", "consent:read")
    make_key("other", "consent:read")
    with app.extensions["db"].sessions() as session:
        other_key = session.scalar(select(ApiKey.key_id).join(App, App.id == ApiKey.app_id).where(App.slug == "other"))
    admin = make_operator("admin", apps=("shop",))
    page = admin.browser.get("/console/apps")
    assert page.status_code == 200 and other_key not in page.text and "platform:retention" not in page.text
    assert post_form(admin.browser, "/console/apps", "/console/apps", {"slug": "mine"}).status_code == 403
    assert admin.browser.get(f"/console/keys/{other_key}/revoke").status_code == 404
    assert post_form(admin.browser, "/console/apps", f"/console/keys/{other_key}/revoke",
                     {"reason": "not mine"}).status_code == 404
    wide = post_form(admin.browser, "/console/apps", "/console/keys", {"app": "shop", "scopes": "platform:read"})
    assert wide.status_code == 422
    elsewhere = post_form(admin.browser, "/console/apps", "/console/keys", {"app": "other", "scopes": "consent:read"})
    assert elsewhere.status_code == 422 and 'id="app-error"' in elsewhere.text


def test_the_keys_are_paged_on_the_server(app, make_operator):
    from console.app_pages import KEYS_PAGE
    from service.tenancy import create_app_tenant, create_key

    with app.extensions["db"].session() as session:
        for slug in ("alpha", "beta"):
            create_app_tenant(session, slug)
            for n in range(KEYS_PAGE // 2 + 3):  # two apps' keys: more than one page in all
                create_key(session, slug, frozenset({"consent:read"}), label=f"{slug}-{n:03}")
    admin = make_operator("admin")
    first, second = admin.browser.get("/console/apps").text, admin.browser.get("/console/apps?page=2").text
    labels = re.compile(r"<td>((?:alpha|beta)-\d{3})</td>")
    shown = labels.findall(first) + labels.findall(second)
    assert len(labels.findall(first)) == KEYS_PAGE and "Page 1 of 2" in first
    assert sorted(shown) == shown and len(set(shown)) == 2 * (KEYS_PAGE // 2 + 3)  # every key once, in order
    assert labels.findall(admin.browser.get("/console/apps?page=x").text) == labels.findall(first)


def test_the_keys_list_shows_expiry_and_last_use(app, make_operator, client):
    from datetime import timedelta

    from service.db import utcnow
    from service.tenancy import create_app_tenant, create_key

    with app.extensions["db"].session() as session:
        create_app_tenant(session, "garden")
        _, secret = create_key(session, "garden", frozenset({"dsar:manage"}), label="used")
        create_key(session, "garden", frozenset({"dsar:manage"}), label="dated",
                   expires_at=utcnow() + timedelta(days=3))
    assert client.get("/v1/holds", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page = make_operator("admin").browser.get("/console/apps").text
    rows = {m[0]: m[1] for m in re.findall(r"<td>(used|dated)</td>(.*?)</tr>", page, re.S)}
    assert "Never" not in rows["used"] and "Never" in rows["dated"]  # last use
    dash = "<td>\u2013</td>"  # no expiry
    assert rows["dated"].count(dash) == 0 and rows["used"].count(dash) == 1
