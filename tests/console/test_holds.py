"""Legal holds in the console: created (subject or category) and released with a reason through holds.service,
audited by operator id; errors next to their field; a hold released meanwhile is not released twice; an
operator limited to an app sees none of another app's holds."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from holds.models import LegalHold
from service.audit import AuditEvent
from tests.console.conftest import post_form


@pytest.fixture
def apps(make_key):
    make_key("shop", "dsar:manage")
    make_key("other", "dsar:manage")


def audited(app, action: str) -> list[AuditEvent]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def holds(app) -> list[LegalHold]:
    with app.extensions["db"].sessions() as session:
        rows = list(session.scalars(select(LegalHold)))
        session.expunge_all()
        return rows


def test_an_agent_holds_a_subject_and_a_category_and_releases_with_a_reason(app, apps, make_operator):
    agent = make_operator("agent")
    made = post_form(agent.browser, "/console/holds?app=shop", "/console/holds",
                     {"app": "shop", "email": "held@example.com", "reason": "litigation 2026-17"})
    assert made.status_code == 303, made.text
    made = post_form(agent.browser, "/console/holds?app=shop", "/console/holds",
                     {"app": "shop", "category": "photos", "until": "2099-01-01", "reason": "audit"})
    assert made.status_code == 303, made.text
    rows = holds(app)
    assert len(rows) == 2 and all(h.created_by == f"operator:{agent.id}" for h in rows)
    subject = next(h for h in rows if h.subject is not None)
    assert b"held@example.com" not in subject.subject  # kept encrypted
    listed = agent.browser.get("/console/holds?app=shop").text
    assert "litigation 2026-17" in listed and "held@example.com" not in listed
    assert [e.actor for e in audited(app, "hold.created")] == [f"operator:{agent.id}"] * 2

    page = f"/console/holds/{subject.id}/release"
    short = post_form(agent.browser, page, page, {"reason": "x"})
    assert short.status_code == 422 and 'id="reason-error"' in short.text and 'aria-invalid="true"' in short.text
    stale_page = agent.browser.get(page).text  # a second tab, opened before the release
    done = post_form(agent.browser, page, page, {"reason": "case settled"})
    assert done.status_code == 303
    assert next(h for h in holds(app) if h.id == subject.id).release_reason == "case settled"
    assert [e.actor for e in audited(app, "hold.released")] == [f"operator:{agent.id}"]
    from tests.portal.conftest import csrf_token

    again = agent.browser.post(page, data={"csrf_token": csrf_token(stale_page), "reason": "twice"})
    assert again.status_code == 409 and "already released" in again.text
    assert next(h for h in holds(app) if h.id == subject.id).release_reason == "case settled"


def test_a_hold_form_with_errors_keeps_nothing_and_names_the_fields(app, apps, make_operator):
    agent = make_operator("agent")
    empty = post_form(agent.browser, "/console/holds?app=shop", "/console/holds", {"app": "shop", "reason": "why"})
    assert empty.status_code == 422 and 'id="email-error"' in empty.text
    bad = post_form(agent.browser, "/console/holds?app=shop", "/console/holds",
                    {"app": "shop", "email": "not an email", "until": "tomorrow", "reason": ""})
    assert bad.status_code == 422
    for field in ("email", "until", "reason"):
        assert f'id="{field}-error"' in bad.text, field
    past = post_form(agent.browser, "/console/holds?app=shop", "/console/holds",
                     {"app": "shop", "category": "photos", "until": "2001-01-01", "reason": "old"})
    assert past.status_code == 422 and 'id="until-error"' in past.text
    assert holds(app) == []


def test_viewers_read_holds_and_an_app_limited_operator_sees_only_its_apps(app, apps, make_operator, client,
                                                                           make_key):
    other = client.post("/v1/holds", headers=make_key("other", "dsar:manage"),
                        json={"category": "photos", "reason": "other's hold"})
    assert other.status_code == 201
    viewer = make_operator("viewer")
    page = viewer.browser.get("/console/holds?app=other")
    assert page.status_code == 200 and "other&#39;s hold" in page.text
    assert 'method="post" action="/console/holds"' not in page.text
    limited = make_operator("agent", apps=("shop",))
    assert limited.browser.get("/console/holds?app=other").status_code == 404
    assert "other&#39;s hold" not in limited.browser.get("/console/holds").text
    assert limited.browser.get(f"/console/holds/{other.json['id']}/release").status_code == 404
    answer = post_form(limited.browser, "/console/holds", f"/console/holds/{other.json['id']}/release",
                       {"reason": "not mine"})
    assert answer.status_code == 404
    made = post_form(limited.browser, "/console/holds", "/console/holds",
                     {"app": "other", "category": "photos", "reason": "sneaky"})
    assert made.status_code == 404 and len(holds(app)) == 1


def test_the_holds_list_is_paginated(app, apps, make_operator, client, make_key):
    headers = make_key("shop", "dsar:manage")
    for n in range(27):
        made = client.post("/v1/holds", headers=headers, json={"category": f"c{n}", "reason": "reason"})
        assert made.status_code == 201
    viewer = make_operator("viewer")
    first = viewer.browser.get("/console/holds?app=shop").text
    second = viewer.browser.get("/console/holds?app=shop&page=2").text
    assert len(re.findall(r"category c\d+", first)) == 25 and len(re.findall(r"category c\d+", second)) == 2
    assert "Page 1 of 2" in first
