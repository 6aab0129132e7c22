"""The privacy centre's API: an app mints a sign-in link for its signed-in user."""

from __future__ import annotations

from typing import Any

from flask import current_app

from portal import links, schemas
from service.api import ApiBlueprint
from service.auth import current_principal, require_scope

blp = ApiBlueprint("portal_links", __name__, url_prefix="/v1/portal",
                   description="Links into the privacy centre for an app's signed-in users")


@blp.post("/links")
@require_scope("consent:write", "dsar:submit")
@blp.arguments(schemas.LinkIn())
@blp.response(201, schemas.LinkOut)
def mint_link(data: dict[str, Any]) -> Any:
    """A single-use link (10 minutes) that signs this user into the app's privacy centre.

    Hand it to the user's browser at once (e.g. redirect); it is exchanged for a session cookie and never shown
    again. The app vouches for the user: rights requests made through it need no emailed code.
    """
    principal = current_principal()
    with current_app.extensions["db"].session() as session:
        url, expires = links.mint_subject_link(
            session, current_app.extensions["keys"], current_app.config["SETTINGS"], app_id=principal.app_id,
            slug=principal.app_slug, actor=f"key:{principal.key_id}", subject_id=data["subject_id"],
            return_url=data["return_url"], locale=data["locale"])
    return {"url": url, "expires_at": expires}
