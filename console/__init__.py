"""The operations console: the privacy team's named accounts (roles, some apps or all, TOTP), the request queue
and a request's page with its actions, at /console/, on the web layer the privacy centre uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """The pages (at /console/), their catalogue, the `operators` commands and the operators' tables."""
    from pathlib import Path

    from console import (  # noqa: F401 - the page modules add their views
        account_pages,
        app_pages,
        consent_pages,
        hold_pages,
        incident_pages,
        overview_pages,
        request_pages,
        retention_pages,
        sso_pages,
        store_pages,
    )
    from console.cli import operators_cli
    from console.web import blp

    wiring.pages.append(blp)
    wiring.translations.append(str(Path(__file__).parent / "translations"))
    wiring.cli_groups.append(operators_cli)
    wiring.model_modules.append("console.models")
    wiring.on_app.append(sso_pages.install)  # single sign-on, when OIDC_ISSUER is set
    wiring.on_app.append(overview_pages.install)
