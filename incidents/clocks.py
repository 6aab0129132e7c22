"""Legal clocks per jurisdiction: who must be told (the authority, the people), when the duty applies (by the risk
decided), and by when, from a table whose sources are in docs/incidents.md; overridable in the TOML config.

Every clock runs from awareness (`discovered_at`). A period in hours or calendar days is exact; a period in working
days skips Saturdays, Sundays and the holidays configured for the jurisdiction (`[incidents.holidays]`), keeping the
time of day, on UTC dates. Public holidays are not modelled unless configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incidents.models import Incident, IncidentNotification
from service.config import ConfigError, Settings, load_settings
from service.db import utcnow

UNITS = ("hours", "days", "working_days")
# When a duty applies, by the risk decided: `risk` (unless the breach is unlikely to result in a risk; it applies
# while the risk is undecided), `high_risk` (only once a high risk is decided), `always`.
WHEN = ("risk", "high_risk", "always")


@dataclass(frozen=True)
class Rule:
    """One obligation of one jurisdiction. `amount`/`unit` None: no fixed period ("without undue delay", "most
    expedient time"), shown with `deadline` and never overdue."""

    jurisdiction: str
    obligation: str  # "authority" or "people"
    when: str
    amount: int | None
    unit: str | None
    deadline: str  # the law's words
    source: str

    def due(self, aware: datetime, holidays: frozenset[date] = frozenset()) -> datetime | None:
        if self.amount is None or self.unit is None:
            return None
        if self.unit == "hours":
            return aware + timedelta(hours=self.amount)
        if self.unit == "days":
            return aware + timedelta(days=self.amount)
        end, left = aware, self.amount
        while left:
            end += timedelta(days=1)
            if end.weekday() < 5 and end.date() not in holidays:
                left -= 1
        return end

    def applies(self, risk: str | None) -> bool:
        if self.when == "always":
            return True
        if self.when == "high_risk":
            return risk == "high_risk"
        return risk != "unlikely"


def _r(jurisdiction: str, obligation: str, when: str, amount: int | None, unit: str | None, deadline: str,
       source: str) -> Rule:
    return Rule(jurisdiction, obligation, when, amount, unit, deadline, source)


# The defaults. Sources and their reading: docs/incidents.md.
DEFAULTS: tuple[Rule, ...] = (
    _r("GDPR", "authority", "risk", 72, "hours", "without undue delay and, where feasible, not later than 72 hours "
       "after having become aware of it", "GDPR Art. 33(1)"),
    _r("GDPR", "people", "high_risk", None, None, "without undue delay", "GDPR Art. 34(1)"),
    _r("UK_GDPR", "authority", "risk", 72, "hours", "without undue delay and, where feasible, not later than 72 "
       "hours after having become aware of it", "UK GDPR Art. 33(1)"),
    _r("UK_GDPR", "people", "high_risk", None, None, "without undue delay", "UK GDPR Art. 34(1)"),
    _r("PIPL", "authority", "risk", 4, "hours", "immediately (PIPL); within 4 hours of discovery for a relatively "
       "major or greater incident (CAC incident reporting measures)",
       "PIPL Art. 57; Measures for the Administration of Cybersecurity Incident Reporting (CAC, 2025)"),
    _r("PIPL", "people", "risk", None, None, "immediately, unless the measures taken effectively avoid harm",
       "PIPL Art. 57"),
    _r("LGPD", "authority", "risk", 3, "working_days", "within 3 working days of knowing that the incident "
       "affected personal data", "LGPD Art. 48; ANPD Resolution CD/ANPD 15/2024 Art. 6"),
    _r("LGPD", "people", "risk", 3, "working_days", "within 3 working days",
       "LGPD Art. 48; ANPD Resolution CD/ANPD 15/2024 Art. 9"),
    _r("US-CO", "people", "risk", 30, "days", "most expedient time possible and without unreasonable delay, not "
       "later than 30 days after determining that a breach occurred", "C.R.S. 6-1-716(2)"),
    _r("US-FL", "people", "risk", 30, "days", "as expeditiously as practicable and without unreasonable delay, no "
       "later than 30 days after the determination of a breach", "Fla. Stat. 501.171(4)(a)"),
    _r("US-WA", "people", "risk", 30, "days", "most expedient time possible, without unreasonable delay, and no "
       "more than 30 calendar days after the breach was discovered", "RCW 19.255.010(8)"),
    _r("US-OH", "people", "risk", 45, "days", "most expedient time possible but not later than 45 days following "
       "discovery", "Ohio Rev. Code 1349.19(B)(2)"),
    _r("US-CT", "people", "risk", 60, "days", "without unreasonable delay but not later than 60 days after the "
       "discovery of the breach", "Conn. Gen. Stat. 36a-701b(b)(1)"),
    _r("US-TX", "people", "risk", 60, "days", "without unreasonable delay and not later than the 60th day after "
       "the date on which the breach was determined", "Tex. Bus. & Com. Code 521.053(b)"),
    _r("US-CA", "people", "risk", None, None, "in the most expedient time possible and without unreasonable delay",
       "Cal. Civ. Code 1798.82(a)"),
)


@dataclass(frozen=True)
class Table:
    rules: tuple[Rule, ...]
    holidays: Mapping[str, frozenset[date]]

    def jurisdictions(self) -> list[str]:
        return sorted({r.jurisdiction for r in self.rules})

    def of(self, jurisdiction: str) -> list[Rule]:
        return [r for r in self.rules if r.jurisdiction == jurisdiction]


def _rule(base: Rule | None, name: str, obligation: str, entry: Any) -> Rule:
    where = f"PRIVACY_CONFIG [incidents.clocks.{name}.{obligation}]"
    if not isinstance(entry, dict) or set(entry) - {"amount", "unit", "when", "deadline", "source"}:
        raise ConfigError(f"{where}: expected a table of amount, unit, when, deadline, source")
    if base is None and not {"when", "deadline", "source"} <= set(entry):
        raise ConfigError(f"{where}: a new obligation needs when, deadline and source")
    rule = base or Rule(name, obligation, "risk", None, None, "", "")
    amount, unit = entry.get("amount", rule.amount), entry.get("unit", rule.unit)
    if (amount is None) != (unit is None):
        raise ConfigError(f"{where}: give amount and unit together")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 1):
        raise ConfigError(f"{where}.amount: expected a whole number >= 1, got {amount!r}")
    if unit is not None and unit not in UNITS:
        raise ConfigError(f"{where}.unit: expected one of {list(UNITS)}, got {unit!r}")
    when = entry.get("when", rule.when)
    if when not in WHEN:
        raise ConfigError(f"{where}.when: expected one of {list(WHEN)}, got {when!r}")
    for text in ("deadline", "source"):
        if text in entry and (not isinstance(entry[text], str) or not entry[text]):
            raise ConfigError(f"{where}.{text}: expected a non-empty string")
    return replace(rule, amount=amount, unit=unit, when=when, deadline=entry.get("deadline", rule.deadline),
                   source=entry.get("source", rule.source))


def _holidays(section: Mapping[str, Any]) -> dict[str, frozenset[date]]:
    table = section.get("holidays", {})
    if not isinstance(table, dict):
        raise ConfigError("PRIVACY_CONFIG [incidents.holidays]: expected a table of JURISDICTION = [dates]")
    out = {}
    for name, days in table.items():
        if not isinstance(days, list) or not all(isinstance(d, date) and not isinstance(d, datetime) for d in days):
            raise ConfigError(f"PRIVACY_CONFIG [incidents.holidays].{name}: expected a list of dates (2026-12-25)")
        out[name.upper()] = frozenset(days)
    return out


def table(toml: Mapping[str, Any]) -> Table:
    """The defaults with `[incidents.clocks.<JURISDICTION>.<authority|people>]` applied; ConfigError names a bad
    entry."""
    section = toml.get("incidents", {})
    if not isinstance(section, dict):
        raise ConfigError("PRIVACY_CONFIG [incidents]: expected a table")
    rules = {(r.jurisdiction, r.obligation): r for r in DEFAULTS}
    clocks = section.get("clocks", {})
    if not isinstance(clocks, dict):
        raise ConfigError("PRIVACY_CONFIG [incidents.clocks]: expected a table")
    for name, obligations in clocks.items():
        if not isinstance(obligations, dict) or set(obligations) - {"authority", "people"}:
            raise ConfigError(f"PRIVACY_CONFIG [incidents.clocks.{name}]: expected authority and/or people tables")
        for obligation, entry in obligations.items():
            key = (name.upper(), obligation)
            rules[key] = _rule(rules.get(key), name.upper(), obligation, entry)
    return Table(tuple(rules.values()), _holidays(section))


def current_table(settings: Settings | None = None) -> Table:
    return table((settings or load_settings()).toml)


def obligations(incident: Incident, notices: Iterable[IncidentNotification], clocks: Table,
                now: datetime | None = None) -> list[dict[str, Any]]:
    """Each obligation of each of the incident's jurisdictions: due time, whether it applies (by the risk decided),
    when it was met (notified, or a reasoned decision not to notify), and whether it is overdue."""
    now = now or utcnow()
    met: dict[tuple[str, str], IncidentNotification] = {}
    for n in sorted(notices, key=lambda n: n.at):
        if n.kind in ("notified", "not_notified"):
            met.setdefault((n.jurisdiction, n.obligation), n)
    out = []
    for jurisdiction in incident.jurisdictions:
        for rule in clocks.of(jurisdiction):
            due = rule.due(incident.discovered_at, clocks.holidays.get(jurisdiction, frozenset()))
            done = met.get((jurisdiction, rule.obligation))
            applies = rule.applies(incident.risk)
            out.append({
                "jurisdiction": jurisdiction, "obligation": rule.obligation, "applies": applies,
                "due_at": due, "deadline": rule.deadline, "source": rule.source,
                "period": None if rule.amount is None else f"{rule.amount} {rule.unit}",
                "done": done is not None, "met_at": done.at if done else None,
                "met_by": None if done is None else done.kind,
                "on_time": None if done is None or due is None else done.at <= due,
                "overdue": applies and done is None and due is not None and due < now,
            })
    return out


def notices_of(session: Session, incident_ids: list[str]) -> dict[str, list[IncidentNotification]]:
    found: dict[str, list[IncidentNotification]] = {i: [] for i in incident_ids}
    if incident_ids:
        for n in session.scalars(select(IncidentNotification)
                                 .where(IncidentNotification.incident_id.in_(incident_ids))):
            found[n.incident_id].append(n)
    return found


def overdue(session: Session, clocks: Table, now: datetime | None = None, app_id: int | None = None) -> list[
        tuple[datetime, Incident, list[dict[str, Any]]]]:
    """Incidents not closed with an overdue obligation, the longest overdue first: (earliest due, incident,
    its overdue obligations)."""
    stmt = select(Incident).where(Incident.state != "closed")
    if app_id is not None:
        stmt = stmt.where(Incident.app_id == app_id)
    incidents = list(session.scalars(stmt))
    notices = notices_of(session, [i.id for i in incidents])
    found = []
    for incident in incidents:
        late = [o for o in obligations(incident, notices[incident.id], clocks, now) if o["overdue"]]
        if late:
            found.append((min(o["due_at"] for o in late), incident, late))
    return sorted(found, key=lambda f: (f[0], f[1].id))


def readiness(session: Session, clocks: Table) -> dict[str, Any]:
    """What /readyz shows (never changing readiness): how many obligations are overdue, in which incidents, and
    the earliest due time among them. Ids and counts only."""
    late = overdue(session, clocks)
    return {"overdue_obligations": sum(len(f[2]) for f in late), "overdue_incidents": [f[1].id for f in late],
            "earliest_due": late[0][0].isoformat() if late else None}
