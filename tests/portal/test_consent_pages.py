"""My consents: the app's policies and purposes with their switches; saving records on the same ledger as the API
(privacy-centre channel, signed receipt, GPC honoured); a material new version is reviewed here; forms are CSRF
checked; one app's session never reaches another app's page."""

from __future__ import annotations

import re
from typing import Any

from tests.portal.conftest import POLICY, csrf_token, save_choices, verified_claims

CONSENTS = "/privacy/shop/consents"


def status(client: Any, headers: dict[str, str], subject: str = "user-1") -> dict[str, Any]:
    answer = client.get(f"/v1/consents/status?subject_id={subject}&policy=app", headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def latest(client: Any, headers: dict[str, str], subject: str = "user-1") -> dict[str, Any]:
    answer = client.get(f"/v1/subjects/{subject}/consents", headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json[0]


def count(client: Any, headers: dict[str, str], subject: str = "user-1") -> int:
    answer = client.get(f"/v1/subjects/{subject}/consents", headers=headers)
    return 0 if answer.status_code == 404 else len(answer.json)


def checkbox(html: str, purpose: str) -> str:
    found = re.search(rf'<input type="checkbox" id="p-app-{purpose}"[^>]*>', html, re.S)
    assert found, purpose
    return found.group(0)


def test_the_page_lists_each_policy_with_its_purposes(portal_app, sign_in):
    page = sign_in(portal_app["writer"], "user-1").get(CONSENTS)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.text
    assert '<h1>My consents</h1>' in html and '<h2 id="title-app">Demo app privacy policy</h2>' in html
    assert "Version 1" in html and "We use your data as follows." in html
    assert "You have not made your choices for this policy yet." in html
    for purpose in POLICY["purposes"]:
        assert purpose["description"] in html
        assert f'<label for="p-app-{purpose["key"]}">' in html  # every switch has its label
    assert "Legal basis: needed for our contract with you." in html and "Legal basis: your consent." in html
    assert "Shared with Example Ads." in html
    assert "disabled" in checkbox(html, "essential") and "checked" in checkbox(html, "essential")
    assert "checked" not in checkbox(html, "analytics") and "disabled" not in checkbox(html, "analytics")
    assert "Accept and save" in html
    assert "style=" not in html and "<script" not in html


def test_saving_records_a_privacy_centre_event_whose_receipt_verifies(client, portal_app, sign_in):
    writer = portal_app["writer"]
    browser = sign_in(writer, "user-1")
    saved = save_choices(browser, ("analytics",))
    assert saved.status_code == 303 and saved.headers["Location"] == f"{CONSENTS}#policy-app"
    event = latest(client, writer)
    assert event["channel"] == "privacy-centre" and event["kind"] == "consent" and event["gpc"] is False
    assert event["purposes"] == {"essential": True, "analytics": True, "marketing": False}
    claims = verified_claims(client, event["receipt"])
    assert claims["consentReceiptID"] == event["id"] and claims["collectionMethod"] == "privacy-centre"
    assert claims["purposeStates"] == {"essential": "granted", "analytics": "granted", "marketing": "denied"}
    assert status(client, writer) == {"consent_required": False, "reason": None, "current_version": "1",
                                      "consented_version": "1", "purposes": event["purposes"]}
    page = browser.get(CONSENTS)
    assert f"Your choices are saved. Receipt {event['id']}." in page.text
    assert "checked" in checkbox(page.text, "analytics") and "checked" not in checkbox(page.text, "marketing")
    assert "Save my choices" in page.text and "not made your choices" not in page.text
    # Switching a purpose off again is a new event on the same chain.
    assert save_choices(browser, ()).status_code == 303
    assert latest(client, writer)["purposes"] == {"essential": True, "analytics": False, "marketing": False}
    assert count(client, writer) == 2


def test_a_material_new_version_is_reviewed_and_accepted_here(client, portal_app, sign_in):
    writer = portal_app["writer"]
    browser = sign_in(writer, "user-1")
    assert save_choices(browser, ("analytics",)).status_code == 303
    published = client.post("/v1/policies/app/versions", headers=portal_app["admin"],
                            json={"version": "2", "text": "We now also use your data for research.",
                                  "material": True})
    assert published.status_code == 201, published.json
    assert status(client, writer)["consent_required"] is True
    page = browser.get(CONSENTS)
    assert "This policy has changed." in page.text and "Version 2" in page.text
    assert "We now also use your data for research." in page.text and "Accept and save" in page.text
    assert "checked" in checkbox(page.text, "analytics")  # the earlier choices are offered again
    assert save_choices(browser, ("analytics",), version="2").status_code == 303
    answer = status(client, writer)
    assert answer["consent_required"] is False and answer["consented_version"] == "2"
    assert answer["purposes"] == {"essential": True, "analytics": True, "marketing": False}
    again = browser.get(CONSENTS)
    assert "This policy has changed." not in again.text and "Accept and save" not in again.text


def test_a_form_for_a_superseded_version_is_shown_again_not_recorded(client, portal_app, sign_in):
    writer = portal_app["writer"]
    browser = sign_in(writer, "user-1")
    stale = save_choices(browser, ("analytics",), version="0")
    assert stale.status_code == 409 and "This policy changed while the page was open." in stale.text
    assert 'role="alert"' in stale.text and 'aria-describedby="error-app"' in stale.text
    assert count(client, writer) == 0


def test_required_purposes_cannot_be_switched_off(client, portal_app, sign_in):
    writer = portal_app["writer"]
    browser = sign_in(writer, "user-1")
    assert save_choices(browser, ()).status_code == 303  # the essential box is not sent (disabled)
    event = latest(client, writer)
    assert event["purposes"] == {"essential": True, "analytics": False, "marketing": False}
    assert verified_claims(client, event["receipt"])["purposeStates"]["essential"] == "granted"


def test_sec_gpc_records_purposes_that_honour_it_as_denied(client, portal_app, sign_in):
    writer = portal_app["writer"]
    browser = sign_in(writer, "user-1")
    saved = save_choices(browser, ("analytics", "marketing"), headers={"Sec-GPC": "1"})
    assert saved.status_code == 303
    event = latest(client, writer)
    assert event["gpc"] is True
    assert event["purposes"] == {"essential": True, "analytics": False, "marketing": False}
    claims = verified_claims(client, event["receipt"])
    assert claims["gpc"] == {"signal": True, "deniedPurposes": ["analytics", "marketing"]}


def test_a_form_without_its_csrf_token_gets_a_400_page_and_records_nothing(client, portal_app, sign_in):
    writer = portal_app["writer"]
    browser = sign_in(writer, "user-1")
    browser.get(CONSENTS)
    for data in ({"version": "1", "purpose": ["analytics"]},
                 {"version": "1", "purpose": ["analytics"], "csrf_token": "forged"}):
        refused = browser.post(f"{CONSENTS}/app", data=data)
        assert refused.status_code == 400 and refused.mimetype == "text/html"
        assert "The form could not be accepted" in refused.text and "Traceback" not in refused.text
    assert count(client, writer) == 0


def test_an_unknown_policy_in_the_form_s_address_is_not_found(client, portal_app, sign_in):
    browser = sign_in(portal_app["writer"], "user-1")
    token = csrf_token(browser.get(CONSENTS).text)
    answer = browser.post(f"{CONSENTS}/nope", data={"csrf_token": token, "version": "1"})
    assert answer.status_code == 404 and answer.mimetype == "text/html" and "Not found" in answer.text


def test_one_app_s_session_never_reaches_another_app_s_page(client, make_key, portal_app, sign_in):
    other_admin = make_key("other", "admin")
    other_policy = {**POLICY, "title": "Other app's secret policy"}
    assert client.post("/v1/policies", json=other_policy, headers=other_admin).status_code == 201
    assert client.post("/v1/policies/app/versions", headers=other_admin, json={
        "version": "1", "effective_at": "2020-01-01T00:00:00Z", "text": "Other text.",
        "material": True}).status_code == 201
    other_reader = make_key("other", "consent:read")
    browser = sign_in(portal_app["writer"], "user-1")
    shop = browser.get(CONSENTS)
    answer = browser.get("/privacy/other/consents")
    assert answer.status_code == 303 and answer.headers["Location"] == "/privacy/other/"
    front = browser.get("/privacy/other/")
    assert front.status_code == 200 and "Other app's secret policy" not in front.text
    assert "My consents" not in front.text  # not signed in there
    posted = browser.post("/privacy/other/consents/app",
                          data={"csrf_token": csrf_token(shop.text), "version": "1", "purpose": ["analytics"]})
    assert posted.status_code == 303 and posted.headers["Location"] == "/privacy/other/"
    assert count(client, other_reader) == 0
    assert browser.get(CONSENTS).status_code == 200  # still signed in to its own app


def test_without_a_session_the_page_sends_the_person_to_the_front(client, portal_app):
    answer = client.get(CONSENTS)
    assert answer.status_code == 303 and answer.headers["Location"] == "/privacy/shop/"
