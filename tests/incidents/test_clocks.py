"""Clocks: the statutory periods from awareness, working days, TOML overrides, overdue first, /readyz."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from incidents import clocks
from service.config import ConfigError

FRIDAY_2330 = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # a Friday


def rule(table: clocks.Table, jurisdiction: str, obligation: str) -> clocks.Rule:
    return next(r for r in table.of(jurisdiction) if r.obligation == obligation)


def test_gdpr_authority_friday_2330_is_due_monday_2330():
    assert FRIDAY_2330.weekday() == 4
    due = rule(clocks.table({}), "GDPR", "authority").due(FRIDAY_2330)
    assert due == datetime(2026, 11, 30, 23, 30, tzinfo=UTC) and due.weekday() == 0


def test_working_days_skip_weekends_and_configured_holidays():
    lgpd = rule(clocks.table({}), "LGPD", "authority")
    assert lgpd.unit == "working_days" and lgpd.amount == 3
    # Friday 23:30 + 3 working days: Monday, Tuesday, Wednesday
    assert lgpd.due(FRIDAY_2330) == datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    # a Saturday awareness counts from Monday
    assert lgpd.due(datetime(2026, 11, 28, 9, 0, tzinfo=UTC)) == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    table = clocks.table({"incidents": {"holidays": {"lgpd": [date(2026, 12, 1)]}}})
    assert lgpd.due(FRIDAY_2330, table.holidays["LGPD"]) == datetime(2026, 12, 3, 23, 30, tzinfo=UTC)


def test_toml_overrides_and_new_jurisdictions():
    table = clocks.table({"incidents": {"clocks": {
        "gdpr": {"authority": {"amount": 24, "unit": "hours"}},
        "XX": {"people": {"amount": 5, "unit": "days", "when": "always", "deadline": "5 days", "source": "law"}}}}})
    gdpr = rule(table, "GDPR", "authority")
    assert gdpr.due(FRIDAY_2330) == FRIDAY_2330 + timedelta(hours=24) and gdpr.source == "GDPR Art. 33(1)"
    assert rule(table, "XX", "people").due(FRIDAY_2330) == FRIDAY_2330 + timedelta(days=5)
    for bad, where in [({"GDPR": {"authority": {"unit": "fortnights"}}}, "unit"),
                       ({"GDPR": {"authority": {"amount": 0}}}, "amount"),
                       ({"YY": {"people": {"amount": 1, "unit": "days"}}}, "needs when"),
                       ({"GDPR": {"regulator": {}}}, "authority and/or people")]:
        with pytest.raises(ConfigError, match=where):
            clocks.table({"incidents": {"clocks": bad}})


def test_risk_decides_which_duties_apply():
    table = clocks.table({})
    authority, people = rule(table, "GDPR", "authority"), rule(table, "GDPR", "people")
    assert authority.applies(None) and authority.applies("risk") and not authority.applies("unlikely")
    assert people.applies("high_risk") and not people.applies("risk") and not people.applies(None)
    assert people.due(FRIDAY_2330) is None and people.deadline == "without undue delay"


def test_api_shows_each_obligation_with_override_and_working_days(client, headers, opened):
    made = opened(discovered_at=FRIDAY_2330.isoformat(), occurred_from=None, occurred_until=None,
                  jurisdictions=["GDPR", "UK_GDPR", "TEST_WD"])
    due = {(o["jurisdiction"], o["obligation"]): o for o in made["obligations"]}
    assert due[("GDPR", "authority")]["due_at"] == "2026-11-30T23:30:00+00:00"
    assert due[("UK_GDPR", "authority")]["due_at"] == "2026-11-29T23:30:00+00:00"  # 48 h from the TOML
    # 2 working days from Friday with Tuesday 1 December a configured holiday: Monday, Wednesday
    assert due[("TEST_WD", "authority")]["due_at"] == "2026-12-02T23:30:00+00:00"
    assert due[("GDPR", "people")]["due_at"] is None and due[("GDPR", "people")]["applies"] is False
    now = datetime.now(UTC)
    assert all(o["overdue"] == (datetime.fromisoformat(o["due_at"]) < now) for k, o in due.items()
               if k[1] == "authority")


def test_overdue_first_notifications_meet_clocks_and_readyz(client, headers, opened):
    now = datetime.now(UTC)
    older = opened(discovered_at=(now - timedelta(days=9)).isoformat(), jurisdictions=["GDPR"])
    newer = opened(discovered_at=(now - timedelta(days=4)).isoformat(), jurisdictions=["GDPR"])
    fresh = opened(discovered_at=(now - timedelta(hours=2)).isoformat(), jurisdictions=["GDPR"])
    r = client.get("/v1/incidents?overdue=true", headers=headers)
    assert [i["id"] for i in r.json] == [older["id"], newer["id"]]
    ready = client.get("/readyz").json["incidents"]
    assert ready["overdue_obligations"] == 2 and set(ready["overdue_incidents"]) == {older["id"], newer["id"]}

    def notify(incident, **data):
        return client.post(f"/v1/incidents/{incident['id']}/notifications", headers=headers, json={
            "jurisdiction": "GDPR", "obligation": "authority", "at": now.isoformat(), **data})

    assert notify(older, kind="supplement").status_code == 422  # a supplement follows a notification
    r = notify(older, kind="not_notified")
    assert r.status_code == 422 and "reasoning" in r.json["errors"]["json"]
    assert notify(older, kind="notified", reference="DPC-2026-123", notified_by="DPO").status_code == 201
    assert notify(older, kind="supplement", reference="DPC-2026-123").status_code == 201
    assert notify(newer, kind="not_notified", reasoning="encrypted at rest; key not exposed").status_code == 201
    assert notify(fresh, jurisdiction="LGPD", kind="notified").status_code == 422
    assert client.get("/v1/incidents?overdue=true", headers=headers).json == []
    assert client.get("/readyz").json["incidents"]["overdue_obligations"] == 0
    got = client.get(f"/v1/incidents/{older['id']}", headers=headers).json
    authority = next(o for o in got["obligations"] if o["obligation"] == "authority")
    assert authority["done"] and authority["met_by"] == "notified" and authority["on_time"] is False
    assert [n["kind"] for n in got["notifications"]] == ["notified", "supplement"]
    # deciding the risk is unlikely lifts the duty (Art. 33(1)): not overdue even without a record
    client.patch(f"/v1/incidents/{fresh['id']}", headers=headers, json={
        "reason": "assessed", "discovered_at": (now - timedelta(days=5)).isoformat()})
    assert [i["id"] for i in client.get("/v1/incidents?overdue=true", headers=headers).json] == [fresh["id"]]
    client.patch(f"/v1/incidents/{fresh['id']}", headers=headers, json={
        "reason": "assessed", "state": "assessed", "risk": "unlikely", "risk_reasoning": "hashed and salted"})
    assert client.get("/v1/incidents?overdue=true", headers=headers).json == []


def test_bad_incidents_settings_stop_the_service():
    from incidents import config

    def settings(toml):
        return type("S", (), {"toml": toml})()

    assert config.options(settings({})).batch_size == 1000
    for bad, where in [({"batch_size": 0}, "batch_size"), ({"lease": 3}, "unknown option"),
                       ({"holidays": {"LGPD": ["Christmas"]}}, "holidays")]:
        with pytest.raises(ConfigError, match=where):
            config.check(type("R", (), {"settings": settings({"incidents": bad})})(), None)
