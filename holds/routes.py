"""HTTP routes of legal holds (thin: logic in holds.service). Holds are managed with `dsar:manage`."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest.pagination import PaginationParameters

from holds import schemas, service
from holds.models import LegalHold
from service.api import ApiBlueprint
from service.auth import current_principal, require_scope
from service.schemas import ReasonIn

blp = ApiBlueprint("holds", __name__, url_prefix="/v1", description="Legal holds")
SCOPE = "dsar:manage"


def _db() -> Any:
    return current_app.extensions["db"]


def _actor() -> str:
    return f"key:{current_principal().key_id}"


def _out(hold: LegalHold) -> dict[str, Any]:
    return {"id": hold.id, "subject": hold.subject is not None, "store": hold.store, "category": hold.category,
            "reason": hold.reason, "until": hold.until, "created_at": hold.created_at,
            "released_at": hold.released_at, "release_reason": hold.release_reason}


@blp.post("/holds")
@require_scope(SCOPE)
@blp.arguments(schemas.HoldIn)
@blp.response(201, schemas.HoldOut)
def create_hold(data: dict[str, Any]) -> Any:
    """Hold a subject's data, a store, a category or a combination: nothing held is erased or destroyed."""
    with _db().session() as session:
        hold = service.create_hold(session, current_app.extensions["keys"], app_id=current_principal().app_id,
                                   actor=_actor(), subject=data["subject"], store=data["store"],
                                   category=data["category"], reason=data["reason"], until=data["until"])
        return _out(hold)


@blp.get("/holds")
@require_scope(SCOPE)
@blp.response(200, schemas.HoldOut(many=True))
@blp.paginate()
def list_holds(pagination_parameters: PaginationParameters) -> Any:
    """The app's holds, newest first, released ones included."""
    with _db().session() as session:
        rows, pagination_parameters.item_count = service.list_holds(
            session, current_principal().app_id, offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size)
        return [_out(h) for h in rows]


@blp.post("/holds/<hold_id>/release")
@require_scope(SCOPE)
@blp.arguments(ReasonIn)
@blp.response(200, schemas.HoldOut)
def release_hold(data: dict[str, Any], hold_id: str) -> Any:
    """Release a hold, with a reason."""
    with _db().session() as session:
        return _out(service.release_hold(session, app_id=current_principal().app_id, hold_id=hold_id,
                                         actor=_actor(), reason=data["reason"]))
