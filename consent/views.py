"""Policies as the consent paths need them: immutable views, cached between requests, and the version a consent
is recorded against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent.models import Policy, PolicyVersion


@dataclass(frozen=True)
class VersionView:
    id: int
    version: str
    effective_at: datetime
    material: bool


@dataclass(frozen=True)
class PurposeView:
    key: str
    description: str
    required: bool
    honors_gpc: bool
    lawful_basis: str
    retention: str | None
    pii_categories: tuple[str, ...]
    third_party: str | None


@dataclass(frozen=True)
class PolicyView:
    """A policy as the consent paths need it, cached between requests.

    Purposes never change once a policy exists; versions do, so writes look up the current version afresh.
    """

    id: int
    key: str
    purposes: tuple[PurposeView, ...]
    versions: tuple[VersionView, ...]

    @property
    def required(self) -> frozenset[str]:
        return frozenset(p.key for p in self.purposes if p.required)

    @classmethod
    def of(cls, policy: Policy) -> "PolicyView":
        return cls(
            id=policy.id, key=policy.key,
            purposes=tuple(PurposeView(p.key, p.description, p.required, p.honors_gpc, p.lawful_basis, p.retention,
                                       tuple(p.pii_categories), p.third_party) for p in policy.purposes),
            versions=tuple(VersionView(v.id, v.version, v.effective_at, v.material) for v in policy.versions),
        )


@dataclass(frozen=True)
class VersionRow:
    """The policy version a consent is recorded against, as the receipt needs it."""

    id: int
    version: str
    effective_at: datetime
    url: str | None
    sha256: str

    @classmethod
    def of(cls, version: PolicyVersion) -> "VersionRow":
        return cls(version.id, version.version, version.effective_at, version.url, version.sha256)


def current_version(versions: list[PolicyVersion] | tuple[Any, ...], now: datetime) -> Any | None:
    """The latest version in effect at `now` (versions are ordered by effective time)."""
    effective = [v for v in versions if v.effective_at <= now]
    return effective[-1] if effective else None
