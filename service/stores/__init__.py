"""User-data stores as plugins: the contract, the registry and the built-in sql, files and redis plugins."""

from service.stores.contract import (
    Description,
    Identity,
    NotApplicable,
    Record,
    Store,
    StoreError,
    StoreUnavailable,
)
from service.stores.registry import Registry, build_registry, registry_from_settings

__all__ = [
    "Description",
    "Identity",
    "NotApplicable",
    "Record",
    "Registry",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "build_registry",
    "registry_from_settings",
]
