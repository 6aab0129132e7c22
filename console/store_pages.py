"""Stores and the data map in the console: every registered store, its health and categories, the retention
policy in force for each category and its last run; a category no policy covers is flagged. The data is what
GET /v1/stores and /v1/datamap answer (service.stores.datamap with the retention domain's look-up)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from console.auth import READ, require
from console.web import blp, page
from retention.views import datamap_lookup
from service.stores.registry import check


def store_rows(session: Any, registry: Any) -> list[dict[str, Any]]:
    """Per store: name, plugin, health, and per category its policy (or None: flagged)."""
    lookup = datamap_lookup(session)
    rows = []
    for store in registry:
        info = store.describe()
        rows.append({"name": info.name, "plugin": info.plugin, "health": check(store),
                     "categories": [{"category": c, "retention": lookup(info.name, c)} for c in info.categories]})
    return rows


@blp.get("/stores")
@require(READ)
def stores_page() -> Any:
    with current_app.extensions["db"].sessions() as session:
        rows = store_rows(session, current_app.extensions["stores"])
    uncovered = sum(1 for r in rows for c in r["categories"] if c["retention"] is None)
    return page("console/stores.html", rows=rows, uncovered=uncovered)
