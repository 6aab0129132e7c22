"""Incidents in the console: an admin opens one through the form (the API's checks, errors next to the field),
sees each legal clock with its time left, moves it on with a reason (a stale page is refused, not overwritten),
records a notification, assesses who was affected, previews and sends the notices to them, closes it and downloads
the report and the signed record;
viewers read only; an operator of another app gets 404."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import select

from incidents import campaigns
from incidents.models import Incident
from service.db import utcnow
from tests.console.conftest import post_form

NOTICE = {"en_subject": "About your photos", "en_text": "Your uploads were readable by anyone for two days.",
          "zh_subject": "关于您的照片", "zh_text": "您上传的文件曾有两天可被任何人读取。"}


def _local(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _open(op, **changes) -> object:
    form = {"app": "shop", "title": "Uploads bucket public", "description": "A bucket was readable by anyone.",
            "discovered_at": _local(utcnow() - timedelta(hours=2)), "severity": "high",
            "occurred_from": _local(utcnow() - timedelta(days=3)),
            "occurred_until": _local(utcnow() - timedelta(days=1)),
            "scope": ["uploads/photos", "cloud-photos/contact"], "jurisdictions": ["GDPR"], **changes}
    return post_form(op.browser, "/console/incidents?app=shop", "/console/incidents", form)


def _id(app) -> str:
    with app.extensions["db"].sessions() as session:
        return session.scalars(select(Incident.id)).one()


def test_an_admin_works_an_incident_from_open_to_its_signed_record(estate, make_operator):
    admin = make_operator("admin", app_=estate)
    wrong = _open(admin, occurred_until=_local(utcnow() - timedelta(days=5)))  # ends before it starts
    assert wrong.status_code == 422 and 'id="occurred_until-error"' in wrong.text
    no_law = _open(admin, jurisdictions=[])  # at least one jurisdiction: the clocks come from them
    assert no_law.status_code == 422 and 'id="jurisdictions-error"' in no_law.text
    opened = _open(admin, occurred_from=_local(utcnow() - timedelta(days=365)))  # the seeded people's activity
    assert opened.status_code == 303
    incident_id = _id(estate)
    page = admin.browser.get(f"/console/incidents/{incident_id}").text
    # GDPR: the authority within 72 hours of awareness (2 hours ago): about 70 hours left, said in words.
    assert "GDPR Art. 33(1)" in page and re.search(r"in (2 days|70 hours|3 days)", page), page
    assert "Overdue" not in page

    # Move on to assessed: the risk and why are needed; a page loaded before another change is refused.
    url = f"/console/incidents/{incident_id}"
    missing = post_form(admin.browser, url, f"{url}/state", {"state": "assessed", "version": "1",
                                                             "reason": "triage done"})
    assert missing.status_code == 422 and 'id="risk_reasoning-error"' in missing.text
    stale = post_form(admin.browser, url, f"{url}/state", {"state": "assessed", "version": "0", "risk": "high_risk",
                                                           "risk_reasoning": "photos with faces", "reason": "triage"})
    assert stale.status_code == 409 and "changed since you opened" in stale.text
    moved = post_form(admin.browser, url, f"{url}/state", {"state": "assessed", "version": "1", "risk": "high_risk",
                                                           "risk_reasoning": "photos with faces", "reason": "triage"})
    assert moved.status_code == 303
    page = admin.browser.get(url).text
    assert "the people affected" in page and "without undue delay" in page  # high risk: Art. 34 applies now

    # The authority was told: that obligation is met.
    told = post_form(admin.browser, url, f"{url}/notifications", {
        "jurisdiction": "GDPR", "obligation": "authority", "kind": "notified", "at": _local(utcnow()),
        "reference": "DPC-2026-1", "notified_by": "DPO"})
    assert told.status_code == 303
    assert "DPC-2026-1" in admin.browser.get(url).text
    bad = post_form(admin.browser, url, f"{url}/notifications", {"jurisdiction": "GDPR", "obligation": "authority",
                                                                 "kind": "notified", "at": ""})
    assert bad.status_code == 422 and 'id="at-error"' in bad.text

    # Who was affected: the run counts per store and category (the estate's stores list their subjects, or
    # are reported as not determinable).
    assert post_form(admin.browser, url, f"{url}/assess", {}).status_code == 303
    page = admin.browser.get(url).text
    assert "Latest assessment: succeeded" in page, page

    # Notices to the people: a preview (counts) before sending the same text; the form's errors by field.
    early = post_form(admin.browser, url, f"{url}/campaigns", {**NOTICE, "action": "send"})
    assert early.status_code == 422 and 'id="campaign-error"' in early.text  # no preview yet
    empty = post_form(admin.browser, url, f"{url}/campaigns", {"action": "preview"})
    assert empty.status_code == 422 and 'id="en_subject-error"' in empty.text
    half = post_form(admin.browser, url, f"{url}/campaigns", {"zh_subject": "关于您的照片", "action": "preview"})
    assert half.status_code == 422 and 'id="zh_text-error"' in half.text and 'id="en_subject-error"' not in half.text
    slow = post_form(admin.browser, url, f"{url}/campaigns", {**NOTICE, "per_minute": "0", "action": "preview"})
    assert slow.status_code == 422 and 'id="per_minute-error"' in slow.text
    assert post_form(admin.browser, url, f"{url}/campaigns", {**NOTICE, "action": "preview"}).status_code == 303
    page = admin.browser.get(url).text
    assert "preview" in page and NOTICE["en_text"] in page  # the previewed text fills the form again
    changed = post_form(admin.browser, url, f"{url}/campaigns", {**NOTICE, "en_text": "other", "action": "send"})
    assert changed.status_code == 422 and 'id="campaign-error"' in changed.text  # not what was previewed
    assert post_form(admin.browser, url, f"{url}/campaigns", {**NOTICE, "action": "send"}).status_code == 303
    with estate.extensions["db"].sessions() as session:
        real = [campaigns.report(session, c) for c in campaigns.of(session, incident_id) if not c.dry_run]
    [counts] = [c["counts"] for c in real]
    assert counts["reachable"] > 0 and counts["notices"] == counts["reachable"]
    assert counts["mail"] == {"sent": counts["reachable"]}
    page = admin.browser.get(url).text
    assert f"<td>{counts['notices']}</td>" in page and f"sent {counts['reachable']}" in page
    again = post_form(admin.browser, url, f"{url}/campaigns", {**NOTICE, "action": "send"})
    assert again.status_code == 409 and 'id="campaign-error"' in again.text  # one real campaign per assessment

    for state, extra in (("contained", {}), ("closed", {"root_cause": "a public ACL", "measures": "ACL fixed"})):
        version = re.search(r'name="version" value="(\d+)"', admin.browser.get(url).text).group(1)
        assert post_form(admin.browser, url, f"{url}/state", {"state": state, "version": version,
                                                              "reason": "done", **extra}).status_code == 303
    record = admin.browser.get(f"{url}/record")
    assert record.status_code == 200 and record.mimetype == "application/jose"
    keys = KeySet.import_key_set(estate.test_client().get("/.well-known/jwks.json").json)
    claims = json.loads(jws.deserialize_compact(record.text, keys, algorithms=["EdDSA"]).payload)
    assert incident_id in json.dumps(claims)
    report = admin.browser.get(f"{url}/report?lang=zh")
    assert report.status_code == 200 and "Uploads bucket public" in report.text
    assert report.headers["Content-Disposition"] == f'attachment; filename="incident-{incident_id}-report-zh.html"'
    filed = admin.browser.get(f"{url}/report?format=json")
    assert filed.mimetype == "application/json" and filed.json["incident"]["id"] == incident_id


def test_overdue_incidents_are_marked_and_listed_first(estate, make_operator):
    admin = make_operator("admin", app_=estate)
    assert _open(admin, title="Old one", discovered_at=_local(utcnow() - timedelta(days=4))).status_code == 303
    assert _open(admin, title="New one").status_code == 303
    overdue = admin.browser.get("/console/incidents?app=shop&overdue=yes").text
    assert "Old one" in overdue and "New one" not in overdue and '<span class="tag overdue">Overdue</span>' in overdue
    everything = admin.browser.get("/console/incidents?app=shop").text
    assert "Old one" in everything and "New one" in everything


def test_viewers_read_and_other_apps_are_not_found(estate, make_operator):
    admin = make_operator("admin", app_=estate)
    assert _open(admin).status_code == 303
    url = f"/console/incidents/{_id(estate)}"
    viewer = make_operator("viewer", app_=estate)
    page = viewer.browser.get(url)
    assert page.status_code == 200 and "Record a notification" not in page.text
    assert post_form(viewer.browser, url, f"{url}/assess", {}).status_code == 403
    outsider = make_operator("admin", apps=("other",), app_=estate)
    assert outsider.browser.get(url).status_code == 404
    assert outsider.browser.get(f"{url}/report").status_code == 404
    assert outsider.browser.get("/console/incidents?app=shop").status_code == 404
