"""Every console page an admin can reach from the menu, plus a request's page, its identity and an action's
confirmation, in Chromium: under 100 KB, nothing from another host, no serious or critical axe violation; the
screenshots of the overview, the queue and a request page that the README shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from dsar.models import DsarRequest
from service.db import utcnow
from tests.browser.conftest import network_of
from tests.browser.console.conftest import make_operator, sign_in

KINDS = [("access", "GDPR"), ("erasure", "GDPR"), ("portability", "UK_GDPR"), ("erasure", "CCPA"),
         ("access", "CCPA"), ("restriction", "GDPR"), ("objection", "LGPD"), ("access", "PIPL")]


@pytest.fixture
def requests_made(live_server, make_key) -> list[str]:
    """Requests of two apps as the API makes them: some awaiting their code, some vouched for by the app and
    carried out at once (jobs run in-process), two of them overdue and one due in three days."""
    client = live_server.app.test_client()
    ids = []
    for n, (kind, law) in enumerate(KINDS * 2):
        slug = "shop" if n % 3 else "games"
        vouched = n % 4 == 0
        headers = make_key(slug, "dsar:submit,dsar:manage" if vouched else "dsar:submit")
        body = {"type": kind, "jurisdiction": law, "subject": {"email": f"person{n}@example.com"},
                "contact_email": f"person{n}@example.com", "verified": vouched}
        answer = client.post("/v1/requests", headers=headers, json=body)
        assert answer.status_code == 202, answer.json
        ids.append(answer.json["id"])
    now = utcnow()
    with live_server.app.extensions["db"].session() as session:
        for request_id, due in ((ids[1], now - timedelta(days=2)), (ids[2], now - timedelta(hours=5)),
                                (ids[3], now + timedelta(days=3))):
            session.execute(update(DsarRequest).where(DsarRequest.id == request_id).values(due_at=due))
    return ids


def test_every_page_is_light_local_and_accessible_and_the_readme_s_screenshots(
        live_server, requests_made, new_page, check_page, screenshot, make_key):
    admin = make_operator(live_server.app, "privacy-lead@example.com", "admin")
    page = new_page()
    assert sign_in(page, admin).status == 200
    network = network_of(page)
    menu = page.get_by_role("navigation", name="Console").get_by_role("link")
    paths = sorted({href for href in menu.evaluate_all("links => links.map(a => a.getAttribute('href'))")})
    assert {"/console/", "/console/requests", "/console/account"} <= set(paths), paths
    request_id = requests_made[1]  # overdue, awaiting its code
    incident = live_server.app.test_client().post("/v1/incidents", headers=make_key("shop", "incidents:manage"), json={
        "title": "Uploads bucket public", "description": "Readable by anyone for a week.",
        "discovered_at": (utcnow() - timedelta(days=4)).isoformat(), "jurisdictions": ["GDPR", "PIPL"],
        "scope": [{"store": "uploads", "category": "photos"}], "severity": "high"})
    assert incident.status_code == 201, incident.json
    paths += [f"/console/requests/{request_id}", f"/console/requests/{request_id}/identity",
              "/console/requests?overdue=yes", "/console/requests?state=open&sort=received",
              f"/console/incidents/{incident.json['id']}", "/console/incidents?overdue=yes"]
    for path in paths:
        network.load(page, path)
        assert page.title(), path
        check_page(page)

    network.load(page, f"/console/requests/{request_id}")
    page.get_by_role("link", name="Extend the deadline", exact=True).click()
    check_page(page)

    network.load(page, "/console/")
    screenshot(page, "console-overview")
    network.load(page, "/console/requests?state=open")
    screenshot(page, "console-queue")
    network.load(page, f"/console/requests/{requests_made[0]}")  # vouched for and completed
    screenshot(page, "console-request")
