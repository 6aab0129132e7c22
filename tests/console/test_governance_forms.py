"""Governance forms in the console: processors (register, record a review) and impact assessments (create, answer,
risks, mitigations, submit, approve or send back), each refusing bad input by field with nothing saved, a missing
CSRF token, and a role without the capability."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from governance.models import Assessment, Processor, ProcessorReview
from service.audit import AuditEvent
from tests.console.conftest import post_form
from tests.portal.conftest import csrf_token

PROCESSORS = "/console/governance/processors"
ASSESSMENTS = "/console/governance/assessments"


def _count(app, model) -> int:
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def _actions(app, action: str) -> list[AuditEvent]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_register_and_review_a_processor(app, make_operator):
    admin = make_operator("admin")
    bad = post_form(admin.browser, PROCESSORS, PROCESSORS, {"key": "Metrics Ltd!", "name": "Metrics Ltd",
                                                            "role": "processor", "countries": "usa"})
    assert bad.status_code == 422 and 'id="key-error"' in bad.text and 'id="countries-error"' in bad.text
    assert _count(app, Processor) == 0
    made = post_form(admin.browser, PROCESSORS, PROCESSORS, {
        "key": "metrics", "name": "Metrics Ltd", "role": "processor", "countries": "NL, US",
        "categories": "device_log", "purposes": "analytics", "erasure_webhook": "https://metrics.example/erase"})
    # A webhook's secret is shown in this answer only.
    assert made.status_code == 201 and "HMAC secret" in made.text
    page = admin.browser.get(PROCESSORS).text
    assert "Metrics Ltd" in page and "missing" in page and "HMAC secret" not in page
    assert _actions(app, "governance.processor_created")[0].actor == f"operator:{admin.id}"
    late = post_form(admin.browser, PROCESSORS, f"{PROCESSORS}/reviews", {
        "processor": "metrics", "reviewed_on": "2026-06-01", "result": "passed", "reviewer": "Ann",
        "next_due": "2026-01-01"})
    assert late.status_code == 422 and 'id="next_due-error"' in late.text and _count(app, ProcessorReview) == 0
    nobody = post_form(admin.browser, PROCESSORS, f"{PROCESSORS}/reviews", {
        "processor": "nobody", "reviewed_on": "2026-06-01", "result": "passed", "reviewer": "Ann",
        "next_due": "2099-01-01"})
    assert nobody.status_code == 422 and 'id="processor-error"' in nobody.text
    done = post_form(admin.browser, PROCESSORS, f"{PROCESSORS}/reviews", {
        "processor": "metrics", "reviewed_on": "2026-06-01", "result": "passed", "reviewer": "Ann",
        "next_due": "2099-01-01"})
    assert done.status_code == 303 and _count(app, ProcessorReview) == 1
    assert "next due 2099-01-01" in admin.browser.get(PROCESSORS).text
    assert len(_actions(app, "governance.processor_reviewed")) == 1


def test_processor_forms_refuse_without_csrf_or_capability(app, make_key, make_operator):
    admin, viewer = make_operator("admin"), make_operator("viewer")
    assert admin.browser.post(PROCESSORS, data={"key": "x", "name": "X", "role": "processor"}).status_code == 400
    assert 'action="/console/governance/processors"' not in viewer.browser.get(PROCESSORS).text
    assert post_form(viewer.browser, PROCESSORS, PROCESSORS, {"key": "x", "name": "X",
                                                              "role": "processor"}).status_code == 403
    assert _count(app, Processor) == 0
    make_key("shop", "consent:read")
    limited = make_operator("admin", apps=("shop",))  # company-wide records: not for an operator of some apps
    token = csrf_token(limited.browser.get("/console/").text)
    assert limited.browser.post(PROCESSORS, data={"csrf_token": token, "key": "x", "name": "X",
                                                  "role": "processor"}).status_code == 403
    assert _count(app, Processor) == 0


def test_assessment_flow_in_the_console(app, client, make_key, make_operator):
    shop = make_key("shop", "admin")
    assert client.post("/v1/policies", headers=shop, json={
        "key": "privacy", "title": "Shop privacy", "purposes": [
            {"key": "analytics", "description": "Product analytics", "pii_categories": ["device_log"]}]}
    ).status_code == 201
    admin, viewer = make_operator("admin"), make_operator("viewer")
    bad = post_form(admin.browser, ASSESSMENTS, ASSESSMENTS, {"app": "shop", "activity": "shop/nope/x",
                                                              "title": "Shop PIA"})
    assert bad.status_code == 422 and 'id="activity-error"' in bad.text and _count(app, Assessment) == 0
    no_title = post_form(admin.browser, ASSESSMENTS, ASSESSMENTS, {"app": "shop", "title": ""})
    assert no_title.status_code == 422 and 'id="title-error"' in no_title.text
    made = post_form(admin.browser, ASSESSMENTS, ASSESSMENTS, {"app": "shop", "title": "Shop PIA"})
    assert made.status_code == 303
    url = made.headers["Location"]
    page = admin.browser.get(url).text
    assert "What the service knows" in page and "device_log" in page
    # Submitting unanswered sections names each of them.
    early = post_form(admin.browser, url, f"{url}/submit", {})
    assert early.status_code == 409 and 'id="collection-error"' in early.text
    answers = {"collection": "Device logs only.", "storage": "Events store.", "use": "Analytics.",
               "destruction": "Deleted after 90 days."}
    assert post_form(admin.browser, url, f"{url}/answers", answers).status_code == 303
    risky = post_form(admin.browser, url, f"{url}/risks", {"id": "R1", "section": "use", "description": "Re-use",
                                                          "likelihood": "9", "impact": "2"})
    assert risky.status_code == 422 and 'id="likelihood-error"' in risky.text
    assert post_form(admin.browser, url, f"{url}/risks", {"id": "R1", "section": "use", "description": "Re-use",
                                                          "likelihood": "4", "impact": "4"}).status_code == 303
    page = admin.browser.get(url).text
    assert ">16<" in page and ">high<" in page
    undated = post_form(admin.browser, url, f"{url}/mitigations", {"risk": "R1", "action": "Purpose limit",
                                                                   "owner": "Ann", "due": "soon"})
    assert undated.status_code == 422 and 'id="due-error"' in undated.text
    assert post_form(admin.browser, url, f"{url}/mitigations", {"risk": "R1", "action": "Purpose limit",
                                                                "owner": "Ann", "due": "2027-03-01"}).status_code == 303
    # A viewer may read but neither edit nor submit.
    assert post_form(viewer.browser, url, f"{url}/submit", {}).status_code == 403
    assert post_form(admin.browser, url, f"{url}/submit", {}).status_code == 303
    # Changes requested need a comment; then back to editable, resubmitted, approved by the admin.
    assert post_form(viewer.browser, url, f"{url}/approve", {}).status_code == 403
    empty = post_form(admin.browser, url, f"{url}/request-changes", {"comment": ""})
    assert empty.status_code == 422 and 'id="comment-error"' in empty.text
    assert post_form(admin.browser, url, f"{url}/request-changes", {"comment": "Say who sees it."}).status_code == 303
    assert "Say who sees it." in admin.browser.get(url).text
    assert post_form(admin.browser, url, f"{url}/submit", {}).status_code == 303
    assert admin.browser.post(f"{url}/approve", data={}).status_code == 400  # no CSRF token
    assert post_form(admin.browser, url, f"{url}/approve", {"review_due": "2027-06-30"}).status_code == 303
    with app.extensions["db"].sessions() as session:
        a = session.scalars(select(Assessment)).one()
        assert (a.state, a.approved_by, a.review_due.isoformat()) == ("approved", admin.email, "2027-06-30")
        assert a.token and a.mitigations[0]["owner"] == "Ann"
    approved = _actions(app, "governance.assessment_approved")
    assert approved[0].actor == f"operator:{admin.id}" and approved[0].details["approver"] == admin.email
    assert 'action="' + url + '/answers"' not in admin.browser.get(url).text  # frozen


def test_evidence_export_page_runs_follows_downloads_and_verifies(rq_app, make_operator, start_worker, tmp_path):
    from service.evidence import verify
    from tests.conftest import wait_for

    evidence = "/console/governance/evidence"
    admin, viewer = make_operator("admin", app_=rq_app), make_operator("viewer", app_=rq_app)
    backwards = post_form(admin.browser, evidence, evidence, {"from": "2026-12-31", "to": "2026-01-01"})
    assert backwards.status_code == 422 and 'id="to-error"' in backwards.text
    assert post_form(viewer.browser, evidence, evidence, {"from": "2026-01-01", "to": "2026-12-31"}).status_code == 403
    assert admin.browser.post(evidence, data={"from": "2026-01-01", "to": "2026-12-31"}).status_code == 400
    assert "No exports yet." in admin.browser.get(evidence).text
    assert post_form(admin.browser, evidence, evidence, {"from": "2026-01-01", "to": "2026-12-31"}).status_code == 303
    queued = admin.browser.get(evidence).text
    assert "queued" in queued and 'http-equiv="refresh"' in queued  # the page follows the job without JS
    start_worker("default")
    done = wait_for(lambda: (lambda t: t if "Download the zip" in t else None)(admin.browser.get(evidence).text),
                    timeout=60)
    assert 'http-equiv="refresh"' not in done and "2026-01-01 \u2013 2026-12-31" in done
    export_id = re.search(r"/console/governance/evidence/([0-9a-f-]{36})/pack.zip", done).group(1)
    zipped = viewer.browser.get(f"{evidence}/{export_id}/pack.zip")
    assert zipped.status_code == 200 and zipped.mimetype == "application/zip"
    pack = tmp_path / "pack.zip"
    pack.write_bytes(zipped.data)
    assert verify(str(pack), rq_app.extensions["runtime"].keys.signer)["files"]
    checked = post_form(viewer.browser, evidence, f"{evidence}/{export_id}/verify", {})
    assert checked.status_code == 200 and "Verified:" in checked.text
    assert len(_actions(rq_app, "evidence.verified")) == 1 and _actions(rq_app, "evidence.export_requested")
