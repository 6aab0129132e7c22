"""What browser tests use besides fixtures: the network guard, axe, keyboard navigation and screenshots."""

from __future__ import annotations

import struct
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, Page, Request

DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
PAGE_WEIGHT_LIMIT = 100_000  # bytes a page load may transfer, its assets included

# Schemes whose "requests" never leave the browser.
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


@dataclass
class LiveServer:
    """The app under test behind a real HTTP server: `url` has no trailing slash and is the app's PUBLIC_URL."""

    url: str
    app: Flask
    errors: list[str] = field(default_factory=list)  # tracebacks of exceptions the app raised while serving

    def __str__(self) -> str:
        return self.url

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return self.app(environ, start_response)
        except Exception:
            # werkzeug turns it into a bare 500 the browser shows quietly; the fixture fails the test with this.
            self.errors.append(traceback.format_exc())
            raise


class NetworkGuard:
    """Records every request a browser context makes; requests to anything but the live server are aborted
    (they never leave the machine) and recorded all the same, so `assert_local` can fail on them."""

    def __init__(self, origin: str) -> None:
        parts = urlsplit(origin)
        self.origin = (parts.scheme, parts.netloc)
        self.requests: list[Request] = []  # since the last reset, in order
        self.finished: list[Request] = []
        self.console_errors: list[str] = []

    def attach(self, context: BrowserContext) -> None:
        # Playwright wraps handlers in attributes it sets: plain functions, not a list's bound builtin method.
        context.on("request", lambda request: self.requests.append(request))
        context.on("requestfinished", lambda request: self.finished.append(request))
        # Routing only what is foreign keeps the live server's own responses untouched.
        context.route(lambda url: not self.is_local(url), lambda route: route.abort("blockedbyclient"))
        context.on("page", self._watch)

    def _watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(f"{page.url}: uncaught {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP violation, a failed load, a script error
            self.console_errors.append(f"{message.location.get('url', '')}: {message.text}")

    def is_local(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in _LOCAL_SCHEMES or (parts.scheme, parts.netloc) == self.origin

    def reset(self) -> None:
        """Forget what was recorded so far (e.g. before the page load to weigh)."""
        self.requests.clear()
        self.finished.clear()
        self.console_errors.clear()

    def foreign(self) -> list[str]:
        return [r.url for r in self.requests if not self.is_local(r.url)]

    def assert_local(self) -> None:
        """Fail, naming them, if any request went to another host than the live server."""
        foreign = self.foreign()
        assert not foreign, "requests to another host than the live server:\n  " + "\n  ".join(foreign)

    def assert_no_console_errors(self) -> None:
        assert not self.console_errors, "console errors:\n  " + "\n  ".join(self.console_errors)

    def transfers(self) -> list[tuple[str, int]]:
        """(url, bytes) of each finished response since the reset: body as sent (encoded) plus headers."""
        out = []
        for request in self.finished:
            sizes = request.sizes()
            out.append((request.url, sizes["responseBodySize"] + sizes["responseHeadersSize"]))
        return out

    def weight(self) -> int:
        return sum(size for _, size in self.transfers())

    def load(self, page: Page, url: str, **goto: Any) -> int:
        """Open `url` afresh and return the bytes its load transferred (every route is intercepted, so
        Chromium's cache is off and each load is a first visit's)."""
        self.reset()
        response = page.goto(url, wait_until="load", **goto)
        assert response is not None, url
        return self.weight()

    def assert_weight_below(self, limit: int = PAGE_WEIGHT_LIMIT) -> int:
        """Fail, listing the heaviest responses, if what was transferred since the reset reaches `limit`."""
        transfers = self.transfers()
        total = sum(size for _, size in transfers)
        heaviest = sorted(transfers, key=lambda t: -t[1])[:10]
        assert total < limit, f"page weight {total} B, limit {limit} B:\n  " + "\n  ".join(
            f"{size:>8} {url}" for url, size in heaviest)
        return total


_AXE = Axe()


def check_axe(page: Page, *, impacts: Iterable[str] = ("serious", "critical"), context: Any = None,
              options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; fail listing every violation of the given impacts (id, impact,
    help, target nodes). Returns all violations, minor ones included."""
    results = _AXE.run(page, context=context, options={"resultTypes": ["violations"], **(options or {})})
    violations = results.response["violations"]
    wanted = set(impacts)
    bad = [v for v in violations if v.get("impact") in wanted]
    lines = []
    for v in bad:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} - {v['helpUrl']}")
        lines.extend(f"    {' '.join(map(str, node['target']))}: {node['html'][:120]}" for node in v["nodes"])
    assert not bad, f"axe: {len(bad)} {'/'.join(sorted(wanted))} violation(s) on {page.url}\n" + "\n".join(lines)
    return violations


# Roles a keyboard user can land on; `tab_to` looks for its name among these unless told a role.
INTERACTIVE_ROLES = ("link", "button", "textbox", "searchbox", "checkbox", "radio", "switch", "combobox", "listbox",
                     "option", "spinbutton", "slider", "tab", "menuitem")

_DESCRIBE_FOCUS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return '(body)';
  const label = e.getAttribute('aria-label') || e.innerText || e.value || e.name || '';
  return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + JSON.stringify(label.trim().slice(0, 40));
}"""


def tab_to(page: Page, target: str | Locator, *, role: str | None = None, max_presses: int = 40,
           backwards: bool = False) -> Locator:
    """Press Tab (Shift+Tab if `backwards`) until focus is on `target`: an element whose accessible name is
    exactly `target` (among INTERACTIVE_ROLES, or `role`), or a Locator. Returns the focused element; fails
    after `max_presses`, listing where focus went."""
    if isinstance(target, str):
        roles = (role,) if role else INTERACTIVE_ROLES
        wanted = page.get_by_role(roles[0], name=target, exact=True)  # type: ignore[arg-type]
        for other in roles[1:]:
            wanted = wanted.or_(page.get_by_role(other, name=target, exact=True))  # type: ignore[arg-type]
    else:
        wanted = target
    key = "Shift+Tab" if backwards else "Tab"
    path = []
    for _ in range(max_presses):
        page.keyboard.press(key)
        if wanted.evaluate_all("els => els.includes(document.activeElement)"):
            return page.locator("*:focus")
        path.append(page.evaluate(_DESCRIBE_FOCUS))
    raise AssertionError(f"{target!r} not reached in {max_presses} presses of {key}; focus went: "
                         + " -> ".join(path))


def take_screenshots(page: Page, folder: Path, name: str, *, full_page: bool = False) -> dict[str, Path]:
    """`<name>-mobile.png` (390x844) and `<name>-desktop.png` (1280x800) of the page in `folder`; the page's
    viewport is restored afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    shots = {}
    try:
        for label, size in (("mobile", MOBILE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)  # type: ignore[arg-type]
            path = folder / f"{name}-{label}.png"
            page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
            shots[label] = path
    finally:
        if before:
            page.set_viewport_size(before)
    return shots


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])
