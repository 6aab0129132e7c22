"""Incidents fixtures: the app over three test-only listing stores (two that can list subjects, one that cannot)
plus the demo estate, a working-day jurisdiction and an override in its TOML, and keys of two apps."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from privacy import create_app
from service.stores.registry import DEMO_ESTATE
from tests.conftest import _truncate

PLUGIN = "tests.incidents.listing:ListingStore"
MANAGE = "incidents:manage"


def config_text(folder: Path) -> str:
    return f"""
include_stores = ["{DEMO_ESTATE}"]

[incidents]
batch_size = 2
lease_seconds = 30

[incidents.clocks.UK_GDPR.authority]
amount = 48
unit = "hours"

[incidents.clocks.TEST_WD.authority]
amount = 2
unit = "working_days"
when = "always"
deadline = "within 2 working days"
source = "test rule"

[incidents.holidays]
TEST_WD = [2026-12-01]

[[stores]]
name = "crm"
plugin = "{PLUGIN}"
data = "{folder / 'crm.json'}"
crash_flag = "{folder / 'crash'}"
crash_after = 1

[[stores]]
name = "billing"
plugin = "{PLUGIN}"
data = "{folder / 'billing.json'}"
categories = ["orders", "invoices"]
identity_types = ["email"]

[[stores]]
name = "legacy"
plugin = "{PLUGIN}"
data = "{folder / 'legacy.json'}"
listing = false
"""


@pytest.fixture(scope="session")
def inc_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("incidents")


@pytest.fixture(scope="session")
def inc_session_app(base_config: dict[str, str], inc_folder: Path) -> Iterator[Flask]:
    path = inc_folder / "privacy.toml"
    path.write_text(config_text(inc_folder))
    app = create_app({**base_config, "PRIVACY_CONFIG": str(path), "REDIS_URL": ""})
    app.config["TESTING"] = True
    yield app
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


@pytest.fixture
def inc_app(inc_session_app: Flask, inc_folder: Path) -> Iterator[Flask]:
    yield inc_session_app
    _truncate(inc_session_app)
    inc_session_app.extensions["key_cache"].clear()
    for name in ("crm.json", "billing.json", "legacy.json", "crash"):
        (inc_folder / name).unlink(missing_ok=True)


@pytest.fixture
def client(inc_app: Flask) -> FlaskClient:
    return inc_app.test_client()


@pytest.fixture
def key(inc_app: Flask, make_key: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    """key("app-a") -> Authorization headers of a new incidents:manage key (other scopes: key("app-a", "admin"))."""

    def make(slug: str, scopes: str = MANAGE) -> dict[str, str]:
        return make_key(slug, scopes)

    return make


@pytest.fixture
def headers(key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return key("app-a")


@pytest.fixture
def records(inc_folder: Path) -> Callable[[str, dict[str, list[Any]]], None]:
    """records("crm", {"contact": [(datetime, {"user_id": "1"}), ...]}) writes a listing store's data."""

    def write(store: str, data: dict[str, list[Any]]) -> None:
        (inc_folder / f"{store}.json").write_text(json.dumps(
            {cat: [[when.isoformat(), identity] for when, identity in rows] for cat, rows in data.items()}))

    return write


def body(**more: Any) -> dict[str, Any]:
    """A valid incident, discovered an hour ago, with a window of the last ten days."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {"title": "Misconfigured bucket", "description": "Photos bucket was public for 3 days",
            "discovered_at": (now - timedelta(hours=1)).isoformat(),
            "occurred_from": (now - timedelta(days=10)).isoformat(), "occurred_until": now.isoformat(),
            "scope": [{"store": "crm", "category": "contact"}], "jurisdictions": ["GDPR"], **more}


@pytest.fixture
def opened(client: FlaskClient, headers: dict[str, str]) -> Callable[..., dict[str, Any]]:
    def open_(**more: Any) -> dict[str, Any]:
        r = client.post("/v1/incidents", json=body(**more), headers=headers)
        assert r.status_code == 201, r.json
        return r.json

    return open_
