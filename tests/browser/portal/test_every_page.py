"""Every page of the privacy centre in Chromium, in English and in Chinese: under 100 KB with its assets, nothing
asked of another host, no serious or critical axe violation; each photographed on a phone and a desktop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import network_of
from tests.browser.portal.conftest import CENTRE, Shop
from tests.portal.conftest import code_for

LANGUAGES = {"en": ("en-GB", "en"), "zh": ("zh-CN", "zh-Hans")}  # browser locale, the pages' html lang
MAIN = {"front", "consents", "history", "request", "verify", "request-detail"}  # photographed in both languages
SEND = "main form[method=post] button[type=submit]"  # the page's own form (not the language switch)


# What is checked here (markup, weight, hosts, contrast) is the same on either database, and `make screenshots`
# runs on SQLite: once is enough. The flows that touch the database run on both (test_*_flow.py).
@pytest.mark.sqlite_only
@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_page_is_light_local_and_accessible(live_server, shop: Shop, new_page: Callable[..., Page],
                                                  check_page: Callable[[Page], None], screenshot: Any, lang: str):
    locale, html_lang = LANGUAGES[lang]
    photographed: set[str] = set()

    def seen(page: Page, name: str, status: int, answer: Any) -> None:
        """Check the page just loaded and photograph it (once)."""
        assert answer is not None and answer.status == status, (name, answer and answer.status)
        assert page.locator("html").get_attribute("lang") == html_lang, name
        check_page(page)
        if (lang == "en" or name in MAIN) and name not in photographed:
            screenshot(page, f"{name}-{lang}" if name in MAIN else name)
            photographed.add(name)

    def load(page: Page, name: str, path: str, status: int = 200) -> None:
        network_of(page).reset()
        seen(page, name, status, page.goto(path, wait_until="load"))

    def send(page: Page, name: str, status: int) -> None:
        network_of(page).reset()
        with page.expect_navigation(wait_until="load") as navigation:
            page.locator(SEND).first.click()
        seen(page, name, status, navigation.value)

    def press(page: Page) -> None:
        with page.expect_navigation(wait_until="load"):
            page.locator(SEND).first.click()

    # The open web: the front page, the form (and with its errors), the code page (and a wrong code), locked.
    visitor = new_page(locale=locale)
    load(visitor, "front", f"{CENTRE}/")
    load(visitor, "request", f"{CENTRE}/request")
    send(visitor, "request-errors", 422)
    expect(visitor.locator(".errors[role=alert] li")).not_to_have_count(0)
    visitor.locator("#type-access").check()
    visitor.locator("#email").fill("ana@example.com")
    send(visitor, "verify", 200)
    request_id = visitor.locator("main form input[name=request]").first.get_attribute("value") or ""
    right = code_for(live_server.app, request_id)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    visitor.locator("#code").fill(wrong)
    send(visitor, "verify-error", 422)
    for _ in range(3):
        visitor.locator("#code").fill(wrong)
        press(visitor)
    visitor.locator("#code").fill(wrong)
    send(visitor, "locked", 423)
    # Four more submissions for the same address reach its limit of five an hour; the sixth is refused.
    for attempt in range(5):
        visitor.goto(f"{CENTRE}/request")
        visitor.locator("#type-access").check()
        visitor.locator("#email").fill("ana@example.com")
        if attempt < 4:
            press(visitor)
    send(visitor, "too-many", 429)
    load(visitor, "not-found", f"{CENTRE}/requests/00000000-0000-0000-0000-000000000000", 404)

    # Signed in from the product: consents, history, a receipt, a request and its page, the list.
    person = new_page(locale=locale)
    link = shop.link("user-1")
    load(person, "consents", link)
    person.locator("#p-app-analytics").check()
    send(person, "consents-saved", 200)
    load(person, "history", f"{CENTRE}/history")
    load(person, "receipt", person.locator("section.event a").first.get_attribute("href") or "")
    load(person, "link-refused", link, 410)
    load(person, "request-signed-in", f"{CENTRE}/request")
    person.locator("#type-access").check()
    send(person, "request-detail", 200)
    expect(person.locator("main form[action$='/download'] button")).to_be_visible()  # completed in-process
    load(person, "requests", f"{CENTRE}/requests")
