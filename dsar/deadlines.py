"""Legal response deadlines per jurisdiction: defaults from the laws' texts, overridable in the TOML config.

Sources and reading are in docs/dsar.md. Calendar months follow the EU rule for time limits (Regulation
1182/71): the same day of the month, or the month's last day when it has no such day.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.config import ConfigError


@dataclass(frozen=True)
class Period:
    amount: int
    unit: str  # "months", "days" (calendar) or "working_days"

    def after(self, start: datetime) -> datetime:
        if self.unit == "months":
            month = start.month - 1 + self.amount
            year, month = start.year + month // 12, month % 12 + 1
            day = min(start.day, calendar.monthrange(year, month)[1])
            return start.replace(year=year, month=month, day=day)
        if self.unit == "days":
            return start + timedelta(days=self.amount)
        end, left = start, self.amount
        while left:
            end += timedelta(days=1)
            if end.weekday() < 5:
                left -= 1
        return end


@dataclass(frozen=True)
class Deadline:
    period: Period
    extension: Period | None


DEFAULTS: dict[str, Deadline] = {
    "GDPR": Deadline(Period(1, "months"), Period(2, "months")),      # GDPR Art. 12(3)
    "UK_GDPR": Deadline(Period(1, "months"), Period(2, "months")),   # UK GDPR Art. 12(3)
    "CCPA": Deadline(Period(45, "days"), Period(45, "days")),        # Cal. Civ. Code 1798.130(a)(2)(A); 11 CCR 7021
    "CPRA": Deadline(Period(45, "days"), Period(45, "days")),        # the CCPA as amended by the CPRA: same rule
    "VCDPA": Deadline(Period(45, "days"), Period(45, "days")),       # Va. Code 59.1-577(B)
    "LGPD": Deadline(Period(15, "days"), None),                      # LGPD Art. 19(II)
    "PIPL": Deadline(Period(15, "working_days"), None),              # PIPL Art. 50 + CAC App rules (docs/dsar.md)
    "PIPEDA": Deadline(Period(30, "days"), Period(30, "days")),      # PIPEDA s. 8(3), 8(4)
}


def _period(value: Any, where: str) -> Period:
    if not isinstance(value, dict) or set(value) - {"amount", "unit"} or not isinstance(value.get("amount"), int):
        raise ConfigError(f"PRIVACY_CONFIG {where}: expected {{amount = N, unit = \"months|days|working_days\"}}")
    if value.get("unit") not in ("months", "days", "working_days") or value["amount"] < 1:
        raise ConfigError(f"PRIVACY_CONFIG {where}.unit: expected months, days or working_days")
    return Period(value["amount"], value["unit"])


def deadlines(toml: Mapping[str, Any]) -> dict[str, Deadline]:
    """Defaults with `[dsar.deadlines.<JURISDICTION>] period = {...}, extension = {...}` applied."""
    table = dict(DEFAULTS)
    for name, entry in toml.get("dsar", {}).get("deadlines", {}).items():
        where = f"[dsar.deadlines.{name}]"
        if not isinstance(entry, dict) or "period" not in entry:
            raise ConfigError(f"PRIVACY_CONFIG {where}: needs a period")
        extension = entry.get("extension")
        table[name.upper()] = Deadline(_period(entry["period"], f"{where}.period"),
                                       _period(extension, f"{where}.extension") if extension else None)
    return table
