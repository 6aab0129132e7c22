"""My consents in Chromium: a person an app signs in reviews a material new version, switches a purpose off and
saves; the status API and the ledger agree, and the receipt downloaded from the history verifies with the JWKS.
The same by keyboard alone, and in Chinese."""


from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from playwright.sync_api import Page, expect

from tests.browser.helpers import tab_to
from tests.browser.portal.conftest import CENTRE, Shop, submit

CONSENTS = f"{CENTRE}/consents"
V2 = "We now also use your data for research."


def accept_version_1(shop: Shop, subject: str) -> None:
    """The person accepted every purpose of version 1 in the product (the API, channel `web`)."""
    status, body = shop.call("POST", "/v1/consents", shop.writer, {
        "subject_id": subject, "policy": "app", "version": "1", "channel": "web", "locale": "en-GB",
        "purposes": {"essential": True, "analytics": True, "marketing": True}})
    assert status == 201, body


def jwks_claims(url: str, token: str) -> dict:
    """A receipt's claims, verified by joserfc with the keys the live server publishes."""
    with urllib.request.urlopen(f"{url}/.well-known/jwks.json", timeout=10) as answer:
        keys = KeySet.import_key_set(json.loads(answer.read()))
    return json.loads(jws.deserialize_compact(token, keys, algorithms=["EdDSA"]).payload)


def ledger_verifies(app) -> None:
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0 and "ledger intact" in result.output, result.output


def test_a_person_reviews_a_new_version_switches_a_purpose_off_and_the_receipt_verifies(live_server, shop, page,
                                                                                     tmp_path: Path):
    accept_version_1(shop, "user-1")
    shop.publish("2", V2)
    assert shop.status("user-1")["consent_required"] is True
    page.goto(shop.link("user-1", return_url="https://shop.example/settings"))
    # The token left the address bar at once.
    assert page.url == f"{live_server.url}{CONSENTS}"
    expect(page.get_by_text("This policy has changed.")).to_be_visible()
    expect(page.get_by_text("Version 2", exact=True)).to_be_visible()
    page.get_by_text("Read the policy").click()
    expect(page.get_by_text(V2)).to_be_visible()
    essential, analytics = page.get_by_label("Essential"), page.get_by_label("Analytics")
    marketing = page.get_by_label("Marketing")
    expect(essential).to_be_checked()
    expect(essential).to_be_disabled()
    expect(analytics).to_be_checked()  # version 1's choices are offered again
    expect(marketing).to_be_checked()
    marketing.uncheck()
    answer = submit(page, "Accept and save")
    assert answer.status == 200 and page.url == f"{live_server.url}{CONSENTS}#policy-app"
    expect(page.get_by_role("status")).to_contain_text("Your choices are saved.")
    expect(page.get_by_label("Marketing")).not_to_be_checked()
    expect(page.get_by_role("button", name="Save my choices")).to_be_visible()
    assert shop.status("user-1") == {"consent_required": False, "reason": None, "current_version": "2",
                                     "consented_version": "2",
                                     "purposes": {"essential": True, "analytics": True, "marketing": False}}
    ledger_verifies(live_server.app)

    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("History of your consents")
    newest = page.locator("section.event").first
    expect(newest).to_contain_text("Marketing: not allowed")
    expect(newest).to_contain_text("This privacy centre")
    with page.expect_download() as downloading:
        newest.get_by_role("link", name="Download receipt (JWS)").click()
    download = downloading.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert re.fullmatch(r"receipt-[0-9a-f-]+\.jws", download.suggested_filename)
    claims = jwks_claims(live_server.url, saved.read_text())
    assert claims["collectionMethod"] == "privacy-centre" and claims["policy"]["version"] == "2"
    assert claims["purposeStates"] == {"essential": "granted", "analytics": "granted", "marketing": "denied"}
    assert download.suggested_filename == f"receipt-{claims['consentReceiptID']}.jws"
    # The readable receipt says the same, and the product's link back is offered.
    newest.get_by_role("link", name="View receipt").click()
    expect(page.locator("#purpose-marketing .state")).to_have_text("not allowed")
    expect(page.get_by_role("contentinfo").get_by_role("link", name="Back to Shop")).to_have_attribute(
        "href", "https://shop.example/settings")


def _focus_is_visible(page: Page) -> None:
    """The focused element draws a focus indicator: an outline of some width, or a box shadow."""
    style = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return {outline: s.outlineStyle, width: parseFloat(s.outlineWidth), shadow: s.boxShadow}; }""")
    assert (style["outline"] != "none" and style["width"] >= 2) or style["shadow"] != "none", style


def test_the_consent_flow_by_keyboard_alone(live_server, shop, page):
    shop.publish("2", V2)
    page.goto(shop.link("user-2"))
    # Skip link first: a keyboard user can jump past the header.
    tab_to(page, "Skip to main content")
    _focus_is_visible(page)
    page.keyboard.press("Enter")
    summary = tab_to(page, page.locator("summary"))
    _focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_text(V2)).to_be_visible()
    assert summary.evaluate("e => e.parentElement.open") is True
    analytics = tab_to(page, "Analytics", role="checkbox")
    _focus_is_visible(page)
    page.keyboard.press("Space")
    expect(page.get_by_label("Analytics")).to_be_checked()
    assert analytics.get_attribute("id") == "p-app-analytics"
    tab_to(page, "Marketing", role="checkbox")  # left off
    tab_to(page, "Accept and save")
    _focus_is_visible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your choices are saved.")
    assert shop.status("user-2")["purposes"] == {"essential": True, "analytics": True, "marketing": False}
    # On to the history and a receipt, by keyboard too.
    tab_to(page, "History")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, "View receipt")
    _focus_is_visible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Consent receipt")
    expect(page.locator("#purpose-analytics .state")).to_have_text("allowed")


@pytest.mark.parametrize("page", ["zh-CN"], indirect=True)
def test_a_chinese_browser_gets_chinese_pages_and_the_switch_changes_and_remembers_the_language(live_server, shop,
                                                                                               page):
    page.goto(shop.link("user-3"))
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    expect(page.get_by_role("heading", level=1)).to_have_text("我的同意")
    expect(page.get_by_role("button", name="接受并保存")).to_be_visible()
    submit(page, "接受并保存")
    page.get_by_role("link", name="历史记录", exact=True).click()
    when = page.locator("section.event time").first.inner_text()
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", when), when  # a date as Chinese readers write it
    body = page.locator("main").inner_text()
    assert not re.search(r"\b(History|Receipt|consent|When)\b", body), body  # no English left behind
    # The switch: English, remembered on the next page, and back.
    submit(page, "English")
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.get_by_role("heading", level=1)).to_have_text("History of your consents")
    assert re.search(r"[A-Z][a-z]+ \d{1,2}, \d{4}|\d{1,2} [A-Z][a-z]+ \d{4}",
                     page.locator("section.event time").first.inner_text())
    page.get_by_role("link", name="My consents", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My consents")  # the cookie beats Accept-Language
    submit(page, "简体中文")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    expect(page.get_by_role("heading", level=1)).to_have_text("我的同意")
