"""The request queue: filters by state, type, app, jurisdiction, due date and overdue; sorting; pages on the
server; the filtered list as CSV without personal data; bad filters named next to their field; the overview."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from dsar.models import DsarRequest
from service.db import utcnow

ID = re.compile(r'href="/console/requests/([0-9a-f-]{36})"')


def shown(html: str) -> list[str]:
    return ID.findall(html)


@pytest.fixture
def queue(app, client, make_key):
    """30 requests of app shop (access, GDPR) and 4 of app other (erasure, CCPA), due one day apart, the
    first three overdue, the next due in an hour; ids in due order."""
    ids = []
    shop, other = make_key("shop", "dsar:submit,dsar:manage"), make_key("other", "dsar:submit,dsar:manage")
    for n in range(34):
        headers, kind, law = (shop, "access", "GDPR") if n < 30 else (other, "erasure", "CCPA")
        answer = client.post("/v1/requests", headers=headers, json={
            "type": kind, "jurisdiction": law, "subject": {"email": f"p{n}@example.com"},
            "contact_email": f"p{n}@example.com"})
        assert answer.status_code == 202
        ids.append(answer.json["id"])
    now = utcnow()
    with app.extensions["db"].session() as session:
        for n, request_id in enumerate(ids):
            session.execute(update(DsarRequest).where(DsarRequest.id == request_id).values(
                due_at=now + timedelta(days=n - 3, hours=1), received_at=now - timedelta(hours=34 - n)))
        session.execute(update(DsarRequest).where(DsarRequest.id == ids[5]).values(status="rejected"))
    return ids


def test_pages_of_the_queue_in_due_order(app, make_operator, queue):
    op = make_operator("viewer")
    first = op.browser.get("/console/requests")
    assert first.status_code == 200 and "34 requests" in first.text and "page 1 of 2" in first.text
    assert shown(first.text) == queue[:25]
    assert 'rel="next" href="/console/requests?page=2"' in first.text
    second = op.browser.get("/console/requests?page=2")
    assert shown(second.text) == queue[25:]
    assert shown(op.browser.get("/console/requests?page=3").text) == []
    assert shown(op.browser.get("/console/requests?page_size=50").text) == queue
    assert shown(op.browser.get("/console/requests?sort=-due").text) == queue[::-1][:25]
    assert shown(op.browser.get("/console/requests?sort=received").text) == queue[::-1][:25]
    assert shown(op.browser.get("/console/requests?sort=-received&page_size=100").text) == queue


def test_filters_narrow_the_queue(app, make_operator, queue):
    op = make_operator("viewer")

    def ids(query: str) -> list[str]:
        answer = op.browser.get("/console/requests?" + query + "&page_size=100")
        assert answer.status_code == 200, answer.text
        return shown(answer.text)

    assert ids("app=other") == queue[30:]
    assert ids("type=erasure") == queue[30:]
    assert ids("jurisdiction=CCPA") == queue[30:]
    assert ids("state=rejected") == [queue[5]]
    assert ids("state=open") == [i for i in queue if i != queue[5]]
    assert ids("state=pending_verification&app=shop") == [i for i in queue[:30] if i != queue[5]]
    assert ids("overdue=yes") == queue[:3]
    assert ids("overdue=no") == queue[3:]
    day = (utcnow() + timedelta(days=2)).date()
    with app.extensions["db"].sessions() as session:
        dues = dict(session.query(DsarRequest.id, DsarRequest.due_at).all())
    assert ids(f"due_before={day.isoformat()}") == [i for i in queue if dues[i].date() <= day]
    assert 5 <= len(ids(f"due_before={day.isoformat()}")) <= 6
    late = op.browser.get("/console/requests?overdue=yes")
    assert late.text.count('class="tag overdue"') == 3


def test_a_bad_filter_is_named_next_to_its_field_and_ignored(app, make_operator, queue):
    op = make_operator("viewer")
    answer = op.browser.get("/console/requests?state=bogus&due_before=yesterday&page=-1")
    assert answer.status_code == 422
    assert 'id="state-error"' in answer.text and 'id="due_before-error"' in answer.text
    assert "Enter a date as YYYY-MM-DD." in answer.text
    assert shown(answer.text) == queue[:25]
    assert op.browser.get("/console/requests.csv?state=bogus").status_code == 400


def test_the_csv_holds_the_filtered_list_without_personal_data(app, make_operator, queue):
    op = make_operator("viewer")
    answer = op.browser.get("/console/requests.csv?app=shop&sort=-due")
    assert answer.status_code == 200 and answer.content_type.startswith("text/csv")
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["id", "app", "type", "state", "jurisdiction", "received_at", "due_at", "overdue",
                       "extended", "verified_at", "closed_at"]
    assert [r[0] for r in rows[1:]] == queue[:30][::-1]  # every page, not just the first
    assert {r[1] for r in rows[1:]} == {"shop"} and {r[7] for r in rows[1:4]} == {"no"}
    assert [r[7] for r in rows[-3:]] == ["yes"] * 3
    assert "@example.com" not in answer.text


def test_the_overview_counts_open_requests(app, make_operator, queue):
    op = make_operator("viewer")
    page = op.browser.get("/console/")
    assert page.status_code == 200
    figures = re.findall(r'<span class="figure">(\d+)</span>', page.text)
    # 33 open (one rejected), 3 overdue, and due in the next 7 days: the 7 due from 1 hour to 6 days and 1 hour
    # from now, less the rejected one.
    assert figures == ["33", "3", "6"]
    assert re.search(r"Awaiting verification</a></th><td class=\"number\">33<", page.text)
