"""Fixtures of the browser tests: the app behind a real HTTP server, Chromium through Playwright, a network guard
on every page, screenshots. Helpers (axe, keyboard, weights) are in tests/browser/helpers.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from privacy import create_app
from tests.browser.helpers import DESKTOP, LiveServer, NetworkGuard, take_screenshots
from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per asset would bury a failing test's output; errors are still logged


def _idle(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"no test is serving an app right now\n"]


@pytest.fixture(scope="session")
def _http_server() -> Iterator[BaseWSGIServer]:
    # Bound before any app exists, so its URL can be the apps' PUBLIC_URL; each test then plugs its app in.
    server = make_server("127.0.0.1", 0, _idle, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="live-server",
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_url(_http_server: BaseWSGIServer) -> str:
    """The live server's base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
    return f"http://127.0.0.1:{_http_server.port}"


@pytest.fixture(scope="session")
def base_config(base_config: dict[str, str], live_url: str) -> dict[str, str]:
    """The shared configuration plus PUBLIC_URL = the live server, so links the app mints and mails (from
    workers too: worker_config builds on this) lead a browser back to it."""
    return {**base_config, "PUBLIC_URL": live_url}


@pytest.fixture(scope="session")
def session_app(base_config: dict[str, str]) -> Iterator[Flask]:
    # Not tests/conftest.py's: that one, cached for the session, may have been built without PUBLIC_URL.
    app = create_app(base_config)
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].dispose()


@contextmanager
def _serving(server: BaseWSGIServer, url: str, app: Flask) -> Iterator[LiveServer]:
    live = LiveServer(url, app)
    server.app = live.wsgi
    try:
        yield live
    finally:
        server.app = _idle
    if live.errors:
        pytest.fail("the app raised while serving the browser:\n" + "\n".join(live.errors))


@pytest.fixture
def live_server(_http_server: BaseWSGIServer, live_url: str, app: Flask) -> Iterator[LiveServer]:
    """`app` (jobs run in-process) served over real HTTP at `live_server.url`; its tables are emptied after the
    test as `app`'s are. The test fails if the app raised while serving."""
    with _serving(_http_server, live_url, app) as live:
        yield live


@pytest.fixture
def rq_live_server(_http_server: BaseWSGIServer, live_url: str, rq_app: Flask) -> Iterator[LiveServer]:
    """`rq_app` (jobs go to RQ on the real Redis) served over real HTTP; start workers with `start_worker`."""
    with _serving(_http_server, live_url, rq_app) as live:
        yield live


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless. Package scope, not session: while Playwright's sync API runs it marks an
    asyncio loop as running in the main thread, which other packages' tests must not meet."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM} (Debian: apt-get install -y chromium "
                    "fonts-noto-cjk; .ci/run does), or CHROMIUM=<path>")
    with sync_playwright() as playwright:
        # As root in a container: no sandbox, and a small /dev/shm.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


_GUARDS: dict[int, NetworkGuard] = {}


def network_of(page: Page) -> NetworkGuard:
    """The network guard of a page opened by `new_page` (or `page`)."""
    return _GUARDS[id(page.context)]


@pytest.fixture
def new_page(browser: Browser, live_url: str) -> Iterator[Callable[..., Page]]:
    """new_page(locale="zh-CN", viewport=MOBILE, java_script_enabled=False, ...) -> a page in a fresh context
    (own cookies), relative URLs resolved against the live server, guarded (see `network_of`). Context options
    pass through to Playwright. After the test, any request that went to another host fails it."""
    opened: list[tuple[BrowserContext, NetworkGuard]] = []

    def open_page(*, locale: str = "en-GB", viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = browser.new_context(locale=locale, viewport=viewport or DESKTOP, base_url=live_url, **options)
        guard = NetworkGuard(live_url)
        guard.attach(context)
        _GUARDS[id(context)] = guard
        opened.append((context, guard))
        return context.new_page()

    yield open_page
    foreign = [url for _, guard in opened for url in guard.foreign()]
    for context, _ in opened:
        _GUARDS.pop(id(context), None)
        context.close()
    if foreign:
        pytest.fail("requests to another host than the live server (a test that provokes one on purpose "
                    "calls network.reset() after asserting on it):\n  " + "\n  ".join(foreign))


@pytest.fixture
def page(new_page: Callable[..., Page], request: pytest.FixtureRequest) -> Page:
    """A desktop page in English; @pytest.mark.parametrize("page", ["zh-CN"], indirect=True) picks the locale."""
    return new_page(locale=getattr(request, "param", "en-GB"))


@pytest.fixture
def network(page: Page) -> NetworkGuard:
    """The network guard of `page`."""
    return network_of(page)


@pytest.fixture
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Path]]:
    """screenshot(page, "consents") -> {"mobile": path, "desktop": path}: PNGs at 390x844 and 1280x800. They go
    to pytest's temporary directory, or with SCREENSHOTS=1 (make screenshots) to docs/screenshots, unless
    publish=False."""
    scratch = tmp_path_factory.getbasetemp() / "screenshots"
    publish_to = SCREENSHOTS if os.environ.get("SCREENSHOTS") == "1" else scratch

    def take(page: Page, name: str, *, publish: bool = True, full_page: bool = False) -> dict[str, Path]:
        return take_screenshots(page, publish_to if publish else scratch, name, full_page=full_page)

    return take
