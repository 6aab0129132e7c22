"""The browser test kit works: Chromium reaches the live server, the network guard and the weight check can fail,
axe tells a bad page from a good one, Tab reaches a control by name, screenshots come in both sizes."""

from __future__ import annotations

import json

import pytest

from tests.browser.helpers import DESKTOP, MOBILE, check_axe, png_size, tab_to

# A 1x1 PNG, so the pages below need no second request.
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVO"
         "RK5CYII=")

BAD_PAGE = f"""<!doctype html><html><head><title>Bad</title></head><body>
<img src="{PIXEL}" width="40" height="40">
<p style="color:#bbb;background:#fff">Barely readable grey on white</p>
</body></html>"""

GOOD_PAGE = f"""<!doctype html><html lang="en"><head><title>Good</title></head><body>
<header><a href="#main">Skip to content</a></header>
<main id="main"><h1>Good</h1>
<p style="color:#222;background:#fff">Readable text</p>
<img src="{PIXEL}" alt="A dot" width="40" height="40">
<form><label for="email">Email</label> <input id="email" type="email">
<button type="submit">Send</button></form>
<a href="#more">Read more</a></main></body></html>"""


def test_healthz_in_chromium_stays_on_the_live_server_and_is_light(live_server, page, network):
    assert live_server.app.config["SETTINGS"].public_url == live_server.url
    weight = network.load(page, "/healthz")
    assert json.loads(page.locator("body").inner_text()) == {"status": "ok"}
    assert [r.url for r in network.requests] == [f"{live_server.url}/healthz"]
    network.assert_local()
    assert 0 < weight == network.assert_weight_below(100_000)


def test_docs_run_swagger_ui_from_the_live_server_only_and_weight_check_can_fail(live_server, page, network):
    network.load(page, f"{live_server.url}/docs")
    # Swagger UI's script ran and fetched the spec: the page lists the API's operations.
    page.get_by_text("/v1/consents", exact=True).wait_for()
    assert f"{live_server.url}/openapi.json" in [r.url for r in network.requests]
    network.assert_local()
    network.assert_no_console_errors()
    with pytest.raises(AssertionError, match=r"(?s)page weight \d+ B, limit 100000 B.*swagger-ui-bundle\.js"):
        network.assert_weight_below(100_000)


def test_rq_live_server_serves_the_app_whose_jobs_go_to_redis(rq_live_server, worker_config, page, network):
    assert rq_live_server.app.config["SETTINGS"].public_url == rq_live_server.url
    assert worker_config["PUBLIC_URL"] == rq_live_server.url  # what start_worker's processes are given
    page.goto("/readyz")
    ready = json.loads(page.locator("body").inner_text())
    assert ready["checks"]["redis"] == "ok", ready
    network.assert_local()


def test_guard_records_and_blocks_a_request_to_another_host(page, network):
    failed = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    with page.expect_event("requestfailed"):
        page.goto('data:text/html,<title>x</title><img src="http://example.invalid/x.png" alt="x">')
    assert [(url, failure.split(".")[0]) for url, failure in failed] == [
        ("http://example.invalid/x.png", "net::ERR_BLOCKED_BY_CLIENT")]
    with pytest.raises(AssertionError, match=r"another host.*\n  http://example\.invalid/x\.png"):
        network.assert_local()
    network.reset()  # provoked on purpose: the page fixture would otherwise fail the test at teardown


def test_axe_reports_serious_and_critical_violations_with_their_nodes(page):
    page.set_content(BAD_PAGE)
    with pytest.raises(AssertionError) as failed:
        check_axe(page)
    report = str(failed.value)
    assert "image-alt (critical)" in report and "color-contrast (serious)" in report
    assert "<img" in report and "Barely readable" in report  # the nodes, to find them


def test_axe_passes_a_good_page(page):
    page.set_content(GOOD_PAGE)
    assert [v for v in check_axe(page) if v["impact"] in ("serious", "critical")] == []


@pytest.mark.parametrize("page", ["zh-CN"], indirect=True)
def test_page_locale_sets_the_browser_language(page, live_server):
    page.goto("/healthz")
    assert page.evaluate("navigator.language") == "zh-CN"
    assert page.evaluate("() => fetch('/healthz').then(r => r.ok)")  # the live server is same-origin


def test_tab_to_moves_focus_by_accessible_name_and_reports_where_it_went(page):
    page.set_content(GOOD_PAGE)
    assert tab_to(page, "Send").inner_text() == "Send"
    assert tab_to(page, "Email", backwards=True).get_attribute("id") == "email"
    assert tab_to(page, "Read more", role="link").get_attribute("href") == "#more"
    with pytest.raises(AssertionError, match=r"'Nowhere' not reached in 5 presses of Tab; focus went: .*a .*"):
        tab_to(page, "Nowhere", max_presses=5)


def test_screenshots_come_in_mobile_and_desktop_sizes(page, screenshot):
    page.set_content(GOOD_PAGE)
    shots = screenshot(page, "smoke", publish=False)
    assert png_size(shots["mobile"]) == (MOBILE["width"], MOBILE["height"])
    assert png_size(shots["desktop"]) == (DESKTOP["width"], DESKTOP["height"])
    assert page.viewport_size == DESKTOP
    assert all(path.stat().st_size < 200_000 for path in shots.values())
