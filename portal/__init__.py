"""The privacy centre: people see and change their consents and exercise their rights in a browser, signed in
through a link their product mints or from the open web with an emailed code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """The links API, the pages (at /privacy/<app slug>/) and their catalogue."""
    from pathlib import Path

    from portal import (  # noqa: F401 - the page modules add their views
        config,
        consent_pages,
        entry,
        history_pages,
        notice_pages,
        request_pages,
        routes,
    )
    from portal.cli import portal_cli
    from portal.web import blp

    wiring.blueprints.append(routes.blp)
    wiring.cli_groups.append(portal_cli)
    wiring.pages.append(blp)
    wiring.translations.append(str(Path(__file__).parent / "translations"))
    wiring.on_app.append(config.install)  # read once: a bad [portal] stops start-up
