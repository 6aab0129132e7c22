"""Policies declared in the TOML file: checked and synced at start-up, shown with their origin, owned by the file."""

from __future__ import annotations

import pytest

from privacy import create_app
from service.config import ConfigError
from tests.conftest import _truncate
from tests.retention.conftest import write_config

POLICIES = "/v1/retention/policies"
LOGS = """
[[retention]]
key = "device-logs"
store = "cloud-photos"
category = "device_log"
retain_for = "{retain_for}"
basis = "security logs: 90 days"
schedule = "0 3 * * *"
"""
ORDERS = """
[[retention]]
store = "cloud-photos"
category = "orders"
retain_for = "P7Y"
action = "anonymize"
basis = "bookkeeping law: seven years"
"""


@pytest.fixture
def start(base_config, estate_env, tmp_path):
    apps = []

    def make(extra: str):
        app = create_app({**base_config, **estate_env, "PRIVACY_CONFIG": str(write_config(tmp_path, extra))})
        apps.append(app)
        return app

    yield make
    if apps:
        _truncate(apps[0])
    for app in apps:
        app.extensions["stores"].close()
        app.extensions["db"].dispose()


def test_declared_policies_are_synced_and_shown_with_their_origin(start, make_key, policy):
    headers = make_key("ops", "platform:retention")
    app = start(LOGS.format(retain_for="P90D") + ORDERS)
    client = app.test_client()
    policy("sessions", "sessions", "P30D")
    shown = {p["key"]: p for p in client.get(POLICIES, headers=headers).json}
    assert {k: (p["origin"], p["version"]) for k, p in shown.items()} == {
        "device-logs": ("config", 1), "cloud-photos.orders": ("config", 1), "sessions.sessions": ("api", 1)}
    assert shown["cloud-photos.orders"]["action"] == "anonymize"
    assert shown["cloud-photos.orders"]["schedule"] == "@daily"

    # The file owns them: the API may not change them.
    r = client.patch(f"{POLICIES}/device-logs", json={"retain_for": "P1D"}, headers=headers)
    assert r.status_code == 409
    assert client.post(f"{POLICIES}/device-logs/disable", headers=headers).status_code == 409

    # A restart with the same file changes nothing; a changed period is a new version; a removed entry is disabled.
    start(LOGS.format(retain_for="P90D") + ORDERS)
    assert client.get(f"{POLICIES}/device-logs", headers=headers).json["version"] == 1
    start(LOGS.format(retain_for="P60D"))
    logs = client.get(f"{POLICIES}/device-logs", headers=headers).json
    assert (logs["version"], logs["retain_for"]) == (2, "P60D")
    versions = client.get(f"{POLICIES}/device-logs/versions", headers=headers).json
    assert [(v["version"], v["created_by"]) for v in versions] == [(2, "config"), (1, "config")]
    assert client.get(f"{POLICIES}/cloud-photos.orders", headers=headers).json["enabled"] is False
    assert client.get(f"{POLICIES}/sessions.sessions", headers=headers).json["enabled"] is True


@pytest.mark.parametrize(("entry", "message"), [
    ('[[retention]]\nstore = "crm"\ncategory = "x"\nretain_for = "P1D"\nbasis = "b"\n', "retention[0].store"),
    ('[[retention]]\nstore = "cloud-photos"\ncategory = "x"\nretain_for = "P1D"\nbasis = "b"\n',
     "retention[0].category"),
    ('[[retention]]\nstore = "cloud-photos"\ncategory = "orders"\nretain_for = "P1D"\nbasis = "b"\n',
     "retention[0].action"),
    ('[[retention]]\nstore = "cloud-photos"\ncategory = "device_log"\nretain_for = "90d"\nbasis = "b"\n',
     "retention[0].retain_for"),
    ('[[retention]]\nstore = "cloud-photos"\ncategory = "device_log"\nretain_for = "P1D"\nbasis = "b"\n'
     'schedule = "daily"\n', "retention[0].schedule"),
    ('[[retention]]\nstore = "cloud-photos"\ncategory = "device_log"\nretain_for = "P1D"\n', "retention[0].basis"),
    ('[[retention]]\nstore = "cloud-photos"\ncategory = "device_log"\nretain_for = "P1D"\nbasis = "b"\nkeep = 1\n',
     "retention[0].keep"),
])
def test_a_bad_declaration_stops_start_up_naming_the_entry_and_option(start, entry, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        start(entry)


# RETENTION_BATCH_SIZE, RETENTION_LEASE_SECONDS and RETENTION_TICK_SECONDS are read with the other settings (the
# environment, or create_app's overrides) and checked at start-up, not looked up in os.environ at each use.

@pytest.mark.parametrize(("name", "value", "message"), [
    ("RETENTION_BATCH_SIZE", "0", "RETENTION_BATCH_SIZE: must be >= 1, got 0"),
    ("RETENTION_LEASE_SECONDS", "soon", "RETENTION_LEASE_SECONDS: expected an integer, got 'soon'"),
    ("RETENTION_TICK_SECONDS", "-5", "RETENTION_TICK_SECONDS: must be >= 1, got -5"),
])
def test_a_bad_retention_setting_stops_start_up_naming_it(base_config, estate_env, name, value, message):
    with pytest.raises(ConfigError, match=message):
        create_app({**base_config, **estate_env, name: value})


def test_the_batch_size_given_to_the_app_is_the_one_its_runs_use(base_config, estate_env, ret_app, seeded, policy,
                                                                  make_key):
    headers = make_key("ops", "platform:retention")
    policy("cloud-photos", "device_log", "P90D")
    app = create_app({**base_config, **estate_env, "RETENTION_BATCH_SIZE": "7"})
    try:
        report = app.test_client().post("/v1/retention/runs", json={"policy": "cloud-photos.device_log"},
                                        headers=headers).json  # in-process: executed before the answer
    finally:
        app.extensions["stores"].close()
        app.extensions["db"].dispose()
    step = report["steps"][0]
    assert report["state"] == "succeeded" and step["count"] > 7
    assert max(step["batches"]) == 7 and len(step["batches"]) == -(-step["count"] // 7)
