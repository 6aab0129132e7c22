"""The context of a consent operation: who calls, with which keys and settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from service.config import Settings
from service.crypto import KeyMaterial
from service.tenancy import Principal


@dataclass(frozen=True)
class Context:
    """What a consent operation needs besides the session: the caller, the keys and the settings."""

    principal: Principal
    keys: KeyMaterial
    settings: Settings
    # Who the audit trail names when not the key, e.g. "subject:<pseudonym>" for a person in the privacy centre.
    acting_as: str | None = None
    # Which stores hold each data category (the store registry's `locations()`), named on receipts.
    locations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.acting_as or f"key:{self.principal.key_id}"

    def pseudonym(self, subject_id: str) -> str:
        return self.keys.pseudonyms.subject(self.principal.app_id, subject_id)
