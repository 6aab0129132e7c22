"""What the service knows that governance records are derived from: apps, their policies' purposes, the stores
and their categories, the retention applied to each (store, category), the last destruction, and the processors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.models import Policy, Purpose
from retention.models import RetentionPolicy, RetentionPolicyVersion, RetentionRun, RetentionStep
from service.tenancy import App

# Transfers "abroad" under EU law are those leaving the European Economic Area.
EEA = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split())


@dataclass(frozen=True)
class PurposeFact:
    app_id: int
    app_slug: str
    app_name: str
    policy: str
    policy_title: str
    purpose: str
    description: str
    lawful_basis: str | None
    required: bool
    retention: str | None
    categories: tuple[str, ...]
    third_party: str | None

    @property
    def key(self) -> str:
        """The processing activity's key: app/policy/purpose."""
        return f"{self.app_slug}/{self.policy}/{self.purpose}"


def purposes(session: Session, app_id: int | None = None) -> list[PurposeFact]:
    """Every app's purposes, by app slug, policy key and purpose order."""
    stmt = (select(App, Policy, Purpose).join(Policy, Policy.app_id == App.id)
            .join(Purpose, Purpose.policy_id == Policy.id).order_by(App.slug, Policy.key, Purpose.id))
    if app_id is not None:
        stmt = stmt.where(App.id == app_id)
    return [PurposeFact(app_id=a.id, app_slug=a.slug, app_name=a.name, policy=p.key, policy_title=p.title,
                        purpose=u.key, description=u.description, lawful_basis=u.lawful_basis or None,
                        required=u.required, retention=u.retention,
                        categories=tuple(dict.fromkeys(u.pii_categories or [])), third_party=u.third_party)
            for a, p, u in session.execute(stmt)]


def store_categories(stores: Any) -> dict[str, list[str]]:
    """{store: its categories}, in registry order."""
    out = {}
    for store in stores:
        info = store.describe()
        out[info.name] = list(dict.fromkeys(info.categories))
    return out


def holders(stores: dict[str, list[str]], category: str) -> list[str]:
    return [name for name, categories in stores.items() if category in categories]


def retention(session: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """(store, category) -> the enabled retention policy there (its key, version, period and action)."""
    rows = session.execute(select(RetentionPolicy, RetentionPolicyVersion).join(
        RetentionPolicyVersion, (RetentionPolicyVersion.policy_id == RetentionPolicy.id)
        & (RetentionPolicyVersion.version == RetentionPolicy.version)).where(RetentionPolicy.enabled.is_(True)))
    return {(p.store, p.category): {"policy": p.key, "version": p.version, "retain_for": v.retain_for,
                                     "action": v.action} for p, v in rows}


def last_destruction(session: Session) -> dict[tuple[str, str], datetime]:
    """(store, category) -> when a real (not dry) run last finished destroying there."""
    rows = session.execute(
        select(RetentionStep.store, RetentionStep.category, func.max(RetentionStep.finished_at))
        .join(RetentionRun, RetentionRun.id == RetentionStep.run_id)
        .where(RetentionRun.dry_run.is_(False), RetentionStep.state == "done")
        .group_by(RetentionStep.store, RetentionStep.category))
    return {(s, c): at for s, c, at in rows if at is not None}


def abroad(countries: list[str], home: str, jurisdiction: str) -> list[str]:
    """The countries outside the controller's area: the EEA for an EU controller, else its own country."""
    inside = EEA if jurisdiction.upper() == "EU" else frozenset({home.upper()})
    return [c for c in countries if c.upper() not in inside]


def receives(processor: dict[str, Any], fact: PurposeFact) -> bool:
    """A processor receives an activity's data when it lists the purpose (by key, or as app/policy/purpose)."""
    return fact.purpose in processor["purposes"] or fact.key in processor["purposes"]


def names_processor(third_party: str, register: list[dict[str, Any]]) -> bool:
    """Whether a purpose's named third party is in the register (by key or by name, ignoring case)."""
    wanted = third_party.strip().casefold()
    return any(wanted in (p["key"].casefold(), p["name"].casefold()) for p in register)
