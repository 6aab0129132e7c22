"""HTTP routes of the store registry: the stores and the data map (which categories live where)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from service.auth import require_scope
from service.stores.datamap import datamap
from service.stores.registry import Registry, check

blp = Blueprint("stores", __name__, url_prefix="/v1", description="Registered user-data stores and the data map")


class StoreOut(Schema):
    name = fields.String(required=True)
    plugin = fields.String(required=True)
    categories = fields.List(fields.String(), required=True)
    identity_types = fields.List(fields.String(), required=True)
    capabilities = fields.List(fields.String(), required=True, metadata={
        "description": 'Optional operations the store has: "subjects" lists who had records of a category in a '
                       "time window."})
    health = fields.String(required=True, metadata={"description": '"ok" or "error: <reason>"'})


class LocationOut(Schema):
    store = fields.String(required=True)
    plugin = fields.String(required=True)
    capabilities = fields.List(fields.String(), required=True,
                               metadata={"description": "The store's optional operations (see /v1/stores)."})
    retention = fields.Dict(required=True, allow_none=True,
                            metadata={"description": "The retention policy applied here; null while none is."})


class CategoryOut(Schema):
    category = fields.String(required=True)
    locations = fields.List(fields.Nested(LocationOut), required=True)


class DataMapOut(Schema):
    categories = fields.List(fields.Nested(CategoryOut), required=True)


def _registry() -> Registry:
    return current_app.extensions["stores"]


@blp.get("/stores")
@require_scope("platform:read")
@blp.response(200, StoreOut(many=True))
def list_stores() -> Any:
    """Every registered store with its categories, identity types, optional operations and health
    (scope platform:read)."""
    return [{**store.describe().as_dict(), "health": check(store)} for store in _registry()]


@blp.get("/datamap")
@require_scope("platform:read")
@blp.response(200, DataMapOut)
def get_datamap() -> Any:
    """Which categories of personal data live in which stores, and the retention policy applied to each
    (scope platform:read)."""
    lookup = current_app.extensions["wiring"].datamap_lookup  # the retention domain's, when it is wired
    with current_app.extensions["db"].session() as session:
        return datamap(_registry(), retention=lookup(session) if lookup else None)
