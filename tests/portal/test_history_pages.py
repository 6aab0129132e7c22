"""History in the privacy centre: every consent event of the person, newest first, with receipts to read and to
download that verify with the published keys; nobody else's events, and nothing without a session."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from portal.history_pages import PER_PAGE, duration
from service.audit import AuditEvent
from service.tenancy import App
from tests.portal.conftest import POLICY, save_choices, verified_claims

HISTORY = "/privacy/shop/history"


def record(client: Any, headers: dict[str, str], subject: str, **answers: bool) -> dict[str, Any]:
    """Record consent through the API, as the app does (channel `web`)."""
    body = {"subject_id": subject, "policy": "app", "version": "1", "channel": "web", "locale": "en-GB",
            "purposes": {"essential": True, **answers}}
    answer = client.post("/v1/consents", json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def listed(html: str) -> list[dict[str, str]]:
    """The events a history page shows, in its order: id, heading, channel and the text of each."""
    found = []
    for chunk in html.split('<section class="panel event"')[1:]:
        found.append({"id": re.search(r'id="event-([0-9a-f-]+)"', chunk).group(1),
                      "heading": re.search(r"<h2[^>]*>([^<]+)</h2>", chunk).group(1),
                      "channel": re.search(r'<span class="channel">([^<]+)</span>', chunk).group(1),
                      "text": re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", chunk))})
    return found


def api_history(client: Any, headers: dict[str, str], subject: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/subjects/{subject}/consents?page_size=100", headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def pseudonym(app: Any, slug: str, subject: str) -> str:
    with app.extensions["db"].sessions() as session:
        app_id = session.scalar(select(App.id).where(App.slug == slug))
    return app.extensions["keys"].pseudonyms.subject(app_id, subject)


def test_history_lists_every_event_newest_first_from_every_channel(client, portal_app, sign_in):
    writer = portal_app["writer"]
    record(client, writer, "user-1", analytics=True)
    browser = sign_in(writer, "user-1")
    assert save_choices(browser, ("marketing",)).status_code == 303
    withdrawn = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "app",
                                                           "purposes": ["marketing"]}, headers=writer)
    assert withdrawn.status_code == 200, withdrawn.json
    record(client, writer, "someone-else", analytics=True)  # not theirs: not listed

    page = browser.get(HISTORY)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    events = listed(page.text)
    assert [e["id"] for e in events] == [e["id"] for e in api_history(client, writer, "user-1")]
    assert len(events) == 3
    assert [e["channel"] for e in events] == ["privacy-centre", "privacy-centre", "web"]
    assert events[0]["heading"] == "Consent withdrawn: Demo app privacy policy"
    assert events[1]["heading"] == "Choices saved: Demo app privacy policy"
    assert "This privacy centre" in events[1]["text"] and "In shop" in events[2]["text"]
    newest, saved, first = (e["text"] for e in events)
    assert "Marketing: withdrawn" in newest and "Essential: allowed" in newest
    assert newest.index("Essential:") < newest.index("Analytics:") < newest.index("Marketing:")  # policy order
    assert "Analytics: not allowed" in saved and "Marketing: allowed" in saved
    assert "Analytics: allowed" in first and "Marketing: not allowed" in first
    assert "version 1" in first and "No signal" in first
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+\+00:00">', page.text)
    for event in events:
        assert f'href="/privacy/shop/receipts/{event["id"]}"' in page.text
        assert f'href="/privacy/shop/receipts/{event["id"]}.jws"' in page.text
    assert '<a href="/privacy/shop/history" aria-current="page">' in page.text
    assert "style=" not in page.text and "<script" not in page.text


def test_a_person_without_events_is_pointed_to_my_consents(portal_app, sign_in):
    page = sign_in(portal_app["writer"], "new-user").get(HISTORY)
    assert page.status_code == 200 and "You have not made any choices yet." in page.text
    assert 'href="/privacy/shop/consents"' in page.text


def test_a_long_history_is_paged_with_plain_links(client, portal_app, sign_in):
    writer = portal_app["writer"]
    ids = [record(client, writer, "user-1", analytics=n % 2 == 0)["id"] for n in range(PER_PAGE + 2)]
    browser = sign_in(writer, "user-1")
    first = browser.get(HISTORY)
    assert [e["id"] for e in listed(first.text)] == ids[::-1][:PER_PAGE]
    assert f"Showing 1 to {PER_PAGE} of {PER_PAGE + 2}." in first.text
    assert 'href="/privacy/shop/history?page=2" rel="next">Older events' in first.text
    assert "Newer events" not in first.text
    second = browser.get(f"{HISTORY}?page=2")
    assert [e["id"] for e in listed(second.text)] == ids[1::-1]
    assert 'href="/privacy/shop/history" rel="prev">Newer events' in second.text
    assert "Older events" not in second.text
    assert browser.get(f"{HISTORY}?page=3").status_code == 404
    for bad in ("0", "-1", "two", "99999999999999999999"):
        answer = browser.get(f"{HISTORY}?page={bad}")
        assert answer.status_code == 400 and "page number" in answer.text, bad
        assert answer.mimetype == "text/html"


def test_the_downloaded_receipt_verifies_with_the_jwks_and_matches_the_event(app, client, portal_app, sign_in):
    browser = sign_in(portal_app["writer"], "user-1")
    assert save_choices(browser, ("analytics",)).status_code == 303
    event = api_history(client, portal_app["writer"], "user-1")[0]
    download = browser.get(f"/privacy/shop/receipts/{event['id']}.jws")
    assert download.status_code == 200 and download.mimetype == "application/jose"
    assert download.headers["Content-Disposition"] == f"attachment; filename=receipt-{event['id']}.jws"
    assert download.text == event["receipt"]  # exactly as signed
    claims = verified_claims(client, download.text)
    assert claims["consentReceiptID"] == event["id"] and claims["collectionMethod"] == "privacy-centre"
    assert claims["purposeStates"] == {"essential": "granted", "analytics": "granted", "marketing": "denied"}
    assert claims["policy"]["key"] == "app" and claims["policy"]["version"] == "1"
    assert claims["sub"] == pseudonym(app, "shop", "user-1")
    # The person acted in the privacy centre, named by pseudonym only.
    assert claims["actingEntity"] == {"partyType": "dpv:DataSubject", "recordedBy": f"subject:{claims['sub']}",
                                      "channel": "privacy-centre"}
    with app.extensions["db"].sessions() as session:
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "portal.receipt_downloaded")).all()
    assert [(a.actor, a.resource_type, a.resource_id) for a in audited] == [
        (f"subject:{claims['sub']}", "consent_event", event["id"])]
    assert "user-1" not in f"{audited[0].details}"


def test_the_receipt_page_shows_the_claims_the_controller_and_how_to_verify(app, client, portal_app, sign_in):
    browser = sign_in(portal_app["writer"], "user-1")
    assert save_choices(browser, ("analytics", "marketing"), headers={"Sec-GPC": "1"}).status_code == 303
    event = api_history(client, portal_app["writer"], "user-1")[0]
    page = browser.get(f"/privacy/shop/receipts/{event['id']}")
    assert page.status_code == 200, page.text
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    controller = app.config["SETTINGS"].controller
    assert controller.name in text and controller.email in text and "1 Example Way, NL" in text
    assert event["id"] in text and "Demo app privacy policy, version 1" in text
    assert '<th scope="col">Purpose</th>' in page.text
    rows = dict(re.findall(r'<tr id="purpose-(\w+)">.*?<td class="state">([^<]+)</td>', page.text, re.S))
    assert rows == {"essential": "allowed", "analytics": "not allowed", "marketing": "not allowed"}  # GPC won
    assert "Global Privacy Control signal. We honoured it by not allowing: Analytics, Marketing." in text
    assert "Offers by email" in text and "Legal basis: needed for our contract with you." in text
    assert "Shared with Example Ads." in text and "Not shared with anyone else." in text
    assert "Kept until you withdraw." in text
    kid = client.get("/.well-known/jwks.json").json["keys"][0]["kid"]
    assert "EdDSA" in text and kid in text
    assert 'href="http://127.0.0.1:5000/.well-known/jwks.json"' in page.text
    assert "jws.deserialize_compact" in page.text and f"receipt-{event['id']}.jws" in page.text
    assert f'href="/privacy/shop/receipts/{event["id"]}.jws"' in page.text
    sub = pseudonym(app, "shop", "user-1")
    assert " ".join(sub[i:i + 8] for i in range(0, 64, 8)) in page.text  # the pseudonym, never the user id
    assert "user-1" not in page.text
    assert "style=" not in page.text and "<script" not in page.text
    # Viewing is no download: only downloads are audited.
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "portal.receipt_downloaded")) is None


def _untokened(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)


def test_another_subject_s_or_app_s_event_is_not_found_like_an_unknown_one(app, client, make_key, portal_app,
                                                                          sign_in):
    writer = portal_app["writer"]
    theirs = record(client, writer, "user-2", analytics=True)["id"]
    other_admin = make_key("other", "admin")
    assert client.post("/v1/policies", json=POLICY, headers=other_admin).status_code == 201
    assert client.post("/v1/policies/app/versions", headers=other_admin, json={
        "version": "1", "effective_at": "2020-01-01T00:00:00Z", "text": "Other.",
        "material": True}).status_code == 201
    other_writer = make_key("other", "consent:write")
    elsewhere = record(client, other_writer, "user-1")["id"]  # the same user id, in another app
    browser = sign_in(writer, "user-1")
    unknown = "00000000-0000-7000-8000-000000000000"
    for suffix in ("", ".jws"):
        expected = browser.get(f"/privacy/shop/receipts/{unknown}{suffix}")
        assert expected.status_code == 404 and "Not found" in expected.text
        for event_id in (theirs, elsewhere):
            answer = browser.get(f"/privacy/shop/receipts/{event_id}{suffix}")
            assert answer.status_code == 404 and answer.mimetype == "text/html", (event_id, suffix)
            # The same page as for an unknown id (the language switch names the path it came from; the sign-out
            # form's CSRF token is timestamped, so two pages a second apart differ there).
            assert _untokened(answer.text) == _untokened(expected.text.replace(unknown, event_id))
    # The other app's pages are not this session's at all.
    assert browser.get(f"/privacy/other/receipts/{elsewhere}").status_code == 303
    assert browser.get("/privacy/shop/receipts/" + "x" * 300).status_code == 404
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "portal.receipt_downloaded")) is None


def test_without_a_session_every_history_page_sends_the_person_to_the_front(client, portal_app):
    event_id = record(client, portal_app["writer"], "user-1")["id"]
    for path in (HISTORY, f"/privacy/shop/receipts/{event_id}", f"/privacy/shop/receipts/{event_id}.jws"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/privacy/shop/", path
        assert event_id not in answer.text


def test_history_is_in_the_person_s_language(portal_app, sign_in, client):
    record(client, portal_app["writer"], "user-1", analytics=True)
    browser = sign_in(portal_app["writer"], "user-1", locale="zh-CN")
    page = browser.get(HISTORY)
    assert page.status_code == 200 and 'lang="zh-Hans"' in page.text
    assert re.search(r'<time datetime="[^"]+">\d{4}年\d{1,2}月\d{1,2}日', page.text)  # the date in Chinese form


def test_retention_periods_read_as_words_in_the_person_s_language(app):
    with app.test_request_context(headers={"Accept-Language": "en-GB"}):
        assert duration("P2Y") == "2 years"
        assert duration("P1Y6M") == "1 year and 6 months"
        assert duration("P1DT12H30M") == "1 day, 12 hours, and 30 minutes"
        assert duration(None) is None
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert duration("P2Y") == "2年"


def test_a_receipt_that_fails_its_check_is_not_vouched_for(app, client, portal_app, sign_in):
    from consent.models import ConsentEvent

    browser = sign_in(portal_app["writer"], "user-1")
    assert save_choices(browser, ("analytics",)).status_code == 303
    event = api_history(client, portal_app["writer"], "user-1")[0]
    head, body, signature = event["receipt"].split(".")
    forged = f"{head}.{body.replace('Z', 'Y', 1)}.{signature}"  # as if the stored row had been altered
    with app.extensions["db"].session() as session:
        session.get(ConsentEvent, event["id"]).receipt = forged
    page = browser.get(f"/privacy/shop/receipts/{event['id']}")
    assert page.status_code == 200 and "signature could not be checked here" in page.text
    assert "What you chose" not in page.text and "Example Electronics" not in page.text.split("<footer")[0]
