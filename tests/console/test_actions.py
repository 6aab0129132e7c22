"""Actions on a request through the console: each confirmed with a reason, done by dsar.service as the API does,
audited with the operator's id; a request changed meanwhile is not acted on; the identity is shown only when
asked, and each look audited. On the demo estate, jobs in-process: a verified request runs to its end at once."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from dsar.models import DsarRequest
from service.audit import AuditEvent
from service.db import utcnow
from service.tenancy import create_key
from tests.portal.conftest import code_for, csrf_token, verified_claims


@pytest.fixture
def shop(estate):
    with estate.extensions["db"].session() as session:
        _, secret = create_key(session, "shop", frozenset({"dsar:submit", "dsar:manage"}))
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def agent(estate, make_operator):
    return make_operator("agent", app_=estate)


def submit(estate, headers, kind="access", user_id=2, **extra) -> str:
    from tests.dsar.conftest import person

    email = person(user_id).user["email"]
    body = {"type": kind, "jurisdiction": "GDPR", "subject": {"email": email}, "contact_email": email, **extra}
    answer = estate.test_client().post("/v1/requests", headers=headers, json=body)
    assert answer.status_code == 202, answer.json
    return answer.json["id"]


def stored(app, request_id: str) -> DsarRequest:
    with app.extensions["db"].sessions() as session:
        row = session.get(DsarRequest, request_id)
        session.expunge(row)
        return row


def confirm_page(browser, request_id: str, name: str):
    """Follow the action's link on the request page (it carries the page's marker) to its confirmation."""
    detail = browser.get(f"/console/requests/{request_id}")
    assert detail.status_code == 200, detail.text
    found = re.search(rf'href="(/console/requests/{request_id}/{name}\?marker=[0-9a-f]+)"', detail.text)
    assert found, f"no {name} action on the page"
    page = browser.get(found.group(1))
    assert page.status_code == 200, page.text
    return page


def act(browser, request_id: str, name: str, page=None, **fields: str):
    page = page or confirm_page(browser, request_id, name)
    marker = re.search(r'name="marker" value="([0-9a-f]+)"', page.text).group(1)
    return browser.post(f"/console/requests/{request_id}/{name}",
                        data={"csrf_token": csrf_token(page.text), "marker": marker, **fields})


def audit_of(app, request_id: str) -> list[AuditEvent]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.resource_id == request_id)
                                    .order_by(AuditEvent.id)))


def test_an_agent_verifies_with_the_code_and_gives_the_requester_a_download_link(estate, shop, agent):
    request_id = submit(estate, shop)
    wrong = act(agent.browser, request_id, "verify", code="000000" if code_for(estate, request_id) != "000000"
                else "111111")
    assert wrong.status_code == 422 and "The code is not right." in wrong.text
    assert stored(estate, request_id).code_attempts == 1  # a wrong code counts, as on the API
    done = act(agent.browser, request_id, "verify", code=code_for(estate, request_id), reason="read out on the phone")
    assert done.status_code == 303
    assert stored(estate, request_id).status == "completed"  # the stores' jobs ran in-process
    entries = audit_of(estate, request_id)
    verified = next(e for e in entries if e.action == "dsar.verified")
    assert verified.actor == f"operator:{agent.id}" and verified.details["reason"] == "one-time code"
    noted = next(e for e in entries if e.action == "console.request_action")
    assert noted.details == {"action": "verify", "reason": "read out on the phone"}
    page = agent.browser.get(f"/console/requests/{request_id}")
    assert "Completed" in page.text and "cloud-photos" in page.text and "dsar.task_done" in page.text
    given = act(agent.browser, request_id, "export-link")
    assert given.status_code == 200
    link = re.search(r'<pre class="token">([^<]+)</pre>', given.text).group(1)
    # The requester opens it: their request's page in the privacy centre, with the download.
    requester = estate.test_client()
    opened = requester.get(urlsplit(link).path)
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/privacy/shop/requests/{request_id}")
    detail = requester.get(opened.headers["Location"])
    got = requester.post(f"/privacy/shop/requests/{request_id}/download",
                         data={"csrf_token": csrf_token(detail.text)})
    assert got.status_code == 200 and got.mimetype == "application/zip"
    from tests.dsar.conftest import person

    archive = zipfile.ZipFile(io.BytesIO(got.data))
    assert person(2).user["email"] in "".join(archive.read(n).decode(errors="replace") for n in archive.namelist())
    assert any(e.action == "console.requester_link_issued" and e.actor == f"operator:{agent.id}"
               for e in audit_of(estate, request_id))


def test_an_agent_extends_an_overdue_looking_request_with_a_reason(estate, shop, agent):
    request_id = submit(estate, shop, verified=True, kind="rectification",
                        details={"corrections": {"no_such_category": {"x": "y"}}})
    before = stored(estate, request_id)
    assert before.status == "in_progress"  # a manual task waits
    short = act(agent.browser, request_id, "extend", reason="no")
    assert short.status_code == 422 and 'id="reason-error"' in short.text
    assert stored(estate, request_id).extended_at is None  # nothing done
    done = act(agent.browser, request_id, "extend", reason="The stores hold many records for this person.")
    assert done.status_code == 303
    after = stored(estate, request_id)
    assert after.extended_at is not None and after.due_at > before.due_at
    entry = next(e for e in audit_of(estate, request_id) if e.action == "dsar.extended")
    assert entry.actor == f"operator:{agent.id}"
    assert entry.details["reason"] == "The stores hold many records for this person."
    page = agent.browser.get(done.headers["Location"])
    assert "Done: Extend the deadline." in page.text and f"/console/requests/{request_id}/extend" not in page.text
    # The manual task, done by hand, closes it.
    assert act(agent.browser, request_id, "complete", reason="Corrected in the CRM by hand.").status_code == 303
    assert stored(estate, request_id).status == "completed"


def test_a_request_changed_meanwhile_is_not_acted_on(estate, shop, agent, make_operator):
    other = make_operator("admin", app_=estate)
    request_id = submit(estate, shop)
    stale = confirm_page(agent.browser, request_id, "reject")
    assert act(other.browser, request_id, "extend", reason="We need the time.").status_code == 303
    refused = act(agent.browser, request_id, "reject", page=stale, reason="Manifestly unfounded.")
    assert refused.status_code == 409 and "This request changed since you opened it" in refused.text
    assert stored(estate, request_id).status == "pending_verification"  # not rejected
    assert act(agent.browser, request_id, "reject", reason="Manifestly unfounded.").status_code == 303
    assert stored(estate, request_id).status == "rejected"
    entry = next(e for e in audit_of(estate, request_id) if e.action == "dsar.rejected")
    assert entry.actor == f"operator:{agent.id}" and entry.details["reason"] == "Manifestly unfounded."


def test_the_service_refuses_what_the_api_refuses(estate, shop, agent):
    request_id = submit(estate, shop)
    with estate.extensions["db"].session() as session:
        session.execute(update(DsarRequest).where(DsarRequest.id == request_id).values(
            due_at=utcnow() - timedelta(days=1)))
    # An overdue request may no longer be extended: dsar.extend says so, and the page shows it.
    refused = act(agent.browser, request_id, "extend", reason="Too late for this.")
    assert refused.status_code == 409 and "This cannot be done now" in refused.text
    assert stored(estate, request_id).extended_at is None
    assert agent.browser.post(f"/console/requests/{request_id}/nonsense", data={}).status_code in (400, 404)


def test_cancel_and_resend_and_identity(estate, shop, agent, make_operator):
    request_id = submit(estate, shop)
    assert act(agent.browser, request_id, "resend").status_code == 303
    assert [e.action for e in audit_of(estate, request_id)].count("dsar.code_sent") == 1
    shown = agent.browser.get(f"/console/requests/{request_id}/identity")
    from tests.dsar.conftest import person

    assert shown.status_code == 200 and person(2).user["email"] in shown.text
    assert person(2).user["email"] not in agent.browser.get(f"/console/requests/{request_id}").text
    looked = [e for e in audit_of(estate, request_id) if e.action == "console.identity_viewed"]
    assert [e.actor for e in looked] == [f"operator:{agent.id}"] and looked[0].details == {}
    viewer = make_operator("viewer", app_=estate)
    assert viewer.browser.get(f"/console/requests/{request_id}/identity").status_code == 403
    assert "Hidden: your role may not see it." in viewer.browser.get(f"/console/requests/{request_id}").text
    assert act(agent.browser, request_id, "cancel").status_code == 303  # the API's reason is optional here
    assert stored(estate, request_id).status == "cancelled"


def test_the_erasure_certificate_downloads_and_verifies(estate, shop, agent):
    request_id = submit(estate, shop, kind="erasure", verified=True)
    assert stored(estate, request_id).status == "completed"
    got = agent.browser.get(f"/console/requests/{request_id}/certificate")
    assert got.status_code == 200 and "attachment" in got.headers["Content-Disposition"]
    claims = verified_claims(estate.test_client(), got.text)
    assert claims["type"] == "erasure-certificate" and claims["request"] == request_id
    assert json.dumps(claims).count(request_id) >= 1
    assert any(e.action == "console.certificate_downloaded" for e in audit_of(estate, request_id))


def test_an_agent_retries_the_failed_tasks_once_the_store_is_back(inline_app_with, make_operator, tmp_path):
    from service.tenancy import create_app_tenant

    down = tmp_path / "crm-down"
    down.write_text("down")
    app = inline_app_with(f'[[stores]]\nname = "legacy-crm"\nplugin = "tests.dsar.plugins:BrokenStore"\n'
                          f'down_while = "{down}"\n')
    with app.extensions["db"].session() as session:
        create_app_tenant(session, "shop")
        _, secret = create_key(session, "shop", frozenset({"dsar:submit", "dsar:manage"}))
    request_id = submit(app, {"Authorization": f"Bearer {secret}"}, kind="erasure", verified=True)
    assert stored(app, request_id).status in ("failed", "partially_completed")
    agent = make_operator("agent", app_=app)
    page = agent.browser.get(f"/console/requests/{request_id}")
    assert "connection refused" in page.text  # the task's last error
    down.unlink()
    assert act(agent.browser, request_id, "retry", reason="The CRM is back.").status_code == 303
    assert stored(app, request_id).status == "completed"
    retried = next(e for e in audit_of(app, request_id) if e.action == "dsar.in_progress" and "retry" in str(
        e.details.get("reason")))
    assert retried.actor == f"operator:{agent.id}" and retried.details["stores"] == ["legacy-crm"]
