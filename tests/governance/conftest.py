"""Governance fixtures: the demo estate (the development registry of examples/estate.toml: the cloud-photos SQL
store and the uploads files store), the demo app made by `flask demo setup`, and helpers over the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

GOVERN = "platform:governance"
RETAIN = "platform:retention"


@pytest.fixture
def demo(app: Flask) -> dict[str, str]:
    """`flask demo setup`: the demo app and its key with every scope (the platform ones included)."""
    result = app.test_cli_runner().invoke(args=["demo", "setup"])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.split('export KEY=')[1].split()[0]}"}


@pytest.fixture
def gov(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """A company-wide key that keeps governance records and retention policies (no app scope)."""
    return make_key("privacy-office", f"{GOVERN},{RETAIN}")


class Api:
    """Calls that must succeed, with the status they must answer."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def call(self, method: str, path: str, status: int = 200, headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:
        r = self.client.open(path, method=method, headers=headers or self.headers, **kwargs)
        assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
        return r.json if r.is_json and r.data else r.get_data(as_text=True)

    def get(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        return self.call("GET", path, status, **kwargs)

    def post(self, path: str, body: Any = None, status: int = 201, **kwargs: Any) -> Any:
        return self.call("POST", path, status, json=body, **kwargs)

    def patch(self, path: str, body: Any, status: int = 200, **kwargs: Any) -> Any:
        return self.call("PATCH", path, status, json=body, **kwargs)


@pytest.fixture
def api(client: FlaskClient, gov: dict[str, str]) -> Api:
    return Api(client, gov)


def purpose(key: str, categories: list[str], basis: str = "consent", **more: Any) -> dict[str, Any]:
    return {"key": key, "description": f"{key} of the product", "lawful_basis": basis,
            "pii_categories": categories, **more}


def retention(api: Api, store: str, category: str, retain_for: str = "P1Y", **more: Any) -> dict[str, Any]:
    return api.post("/v1/retention/policies", {"store": store, "category": category, "retain_for": retain_for,
                                               "basis": "purpose fulfilled", **more})


# The demo estate's stores and their categories (examples/estate.toml), in declaration order.
ESTATE = {"cloud-photos": ["contact", "orders", "device_log", "photos", "location"],
          "uploads": ["photos", "avatars"]}
