"""Legal holds: what must not be erased or destroyed (a subject, a store, a category, or a combination).

Shared by two domains: rights-request erasure (`dsar`) and retention runs (`retention`) consult the holds in
force through `holds.service`; neither owns them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """The /v1/holds routes and the legal_holds table."""
    from holds import pack, routes

    wiring.blueprints.append(routes.blp)
    wiring.model_modules.append("holds.models")
    wiring.evidence.append(pack.SECTION)
