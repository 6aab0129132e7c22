"""The data map: for each category of personal data, the stores holding it and the retention applied there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.stores.registry import Registry

# (store, category) -> what retention applies there; the retention domain supplies one, none applies before.
RetentionLookup = Callable[[str, str], dict[str, Any] | None]


def datamap(registry: Registry, retention: RetentionLookup | None = None) -> dict[str, Any]:
    """Categories in first-seen order, each with its stores (`retention` is null where no lookup says more)."""
    places: dict[str, list[dict[str, Any]]] = {}
    for store in registry:
        info = store.describe()
        for category in info.categories:
            places.setdefault(category, []).append({
                "store": info.name, "plugin": info.plugin, "capabilities": list(info.capabilities),
                "retention": retention(info.name, category) if retention else None})
    return {"categories": [{"category": c, "locations": locs} for c, locs in places.items()]}
