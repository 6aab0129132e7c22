"""Retention periods (ISO 8601 durations such as P180D, P7Y, P1Y6M, PT12H) and cron schedules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from croniter import croniter
from dateutil.relativedelta import relativedelta

_DURATION = re.compile(r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                       r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
DEFAULT_SCHEDULE = "@daily"
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def parse_duration(text: str) -> relativedelta:
    """A positive ISO 8601 duration as a calendar-aware delta; ValueError names what is wrong."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError("expected an ISO 8601 duration such as P180D, P7Y, P1Y6M or PT12H")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    delta = relativedelta(years=years, months=months, weeks=weeks, days=days, hours=hours, minutes=minutes,
                          seconds=seconds)
    if not any((years, months, weeks, days, hours, minutes, seconds)):
        raise ValueError("must be longer than zero")
    return delta


def cutoff(as_of: datetime, retain_for: str) -> datetime:
    """Records older than this are past their retention period at `as_of` (calendar arithmetic: P1M from
    31 March is 28 or 29 February)."""
    return (as_of.astimezone(UTC) - parse_duration(retain_for)).astimezone(UTC)


def check_schedule(expression: str) -> str:
    """A cron expression in UTC: five fields, six with seconds last (croniter's form), or a macro (@daily)."""
    text = " ".join((expression or "").split())
    fields = text.split(" ")
    if not (text in _MACROS or len(fields) in (5, 6)) or not croniter.is_valid(text):
        raise ValueError("expected a cron expression (5 fields, or 6 with seconds last) or a macro such as @daily")
    return text


def latest_slot(schedule: str, now: datetime) -> datetime:
    """The most recent time at or before `now` that the schedule fires (UTC)."""
    # get_prev is strictly before its base: start one second on, so a slot at `now` itself counts.
    base = now.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return croniter(schedule, base).get_prev(datetime).astimezone(UTC)


def next_slot(schedule: str, after: datetime) -> datetime:
    return croniter(schedule, after.astimezone(UTC)).get_next(datetime).astimezone(UTC)
