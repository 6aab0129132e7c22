"""CORS is off unless an app lists its origins; then a listed origin's preflight passes and a response is shared
only with the origins of the calling key's own app (never `*`), the status fast path included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from privacy import create_app
from service import cors
from service.config import ConfigError
from service.tenancy import create_app_tenant, create_key
from tests.conftest import _truncate

SHOP, GAMES = "https://shop.example.com", "https://games.example.com"
STATUS = "/v1/consents/status?subject_id=u1&policy=privacy"


@pytest.fixture
def cors_app(base_config: dict[str, str], tmp_path: Path) -> Iterator[Flask]:
    config = tmp_path / "privacy.toml"
    config.write_text(f'[cors.apps.shop]\norigins = ["{SHOP}"]\n[cors.apps.games]\norigins = ["{GAMES}/"]\n')
    app = create_app({**base_config, "PRIVACY_CONFIG": str(config)})
    yield app
    _truncate(app)
    app.extensions["db"].dispose()


def _keys(app: Flask) -> dict[str, dict[str, str]]:
    out = {}
    with app.extensions["db"].session() as session:
        for slug in ("shop", "games"):
            create_app_tenant(session, slug)
            _, secret = create_key(session, slug, frozenset({"dsar:manage", "consent:read"}))
            out[slug] = {"Authorization": f"Bearer {secret}"}
    return out


def test_a_listed_origin_reads_its_own_apps_answers_only(cors_app):
    keys, client = _keys(cors_app), cors_app.test_client()
    preflight = client.options("/v1/holds", headers={"Origin": SHOP, "Access-Control-Request-Method": "GET",
                                                     "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    stranger = client.options("/v1/holds", headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    own = client.get("/v1/holds", headers={**keys["shop"], "Origin": SHOP})
    assert own.status_code == 200 and own.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in own.headers["Vary"] and "X-Pagination" in own.headers["Access-Control-Expose-Headers"]
    # games' key from shop's origin: answered, but not shared with that page.
    other = client.get("/v1/holds", headers={**keys["games"], "Origin": SHOP})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    assert client.get("/v1/holds", headers={**keys["games"], "Origin": GAMES}).headers[
        "Access-Control-Allow-Origin"] == GAMES
    # The status fast path leaves a cross-origin call to Flask, which decides the headers.
    client.get(STATUS, headers=keys["shop"])  # cached key
    status = client.get(STATUS, headers={**keys["shop"], "Origin": SHOP})
    assert status.headers.get("Access-Control-Allow-Origin") == SHOP


def test_off_unless_configured(app, client, make_key):
    headers = make_key("shop", "dsar:manage")
    answer = client.get("/v1/holds", headers={**headers, "Origin": SHOP})
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
    preflight = client.options("/v1/holds", headers={"Origin": SHOP, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


@pytest.mark.parametrize("toml", [
    {"cors": {"apps": {"shop": {"origins": ["http://shop.example.com"]}}}},  # http only for localhost
    {"cors": {"apps": {"shop": {"origins": ["https://shop.example.com/path"]}}}},
    {"cors": {"apps": {"shop": {"origins": "https://shop.example.com"}}}},
    {"cors": {"apps": {"shop": {"origins": ["*"]}}}},
    {"cors": {"origins": ["https://shop.example.com"]}},
])
def test_bad_settings_stop_the_service_naming_them(toml):
    with pytest.raises(ConfigError, match="cors"):
        cors.load(toml)
    assert cors.load({}) == {}
    assert cors.load({"cors": {"apps": {"dev": {"origins": ["http://localhost:3000"]}}}})["dev"] == {
        "http://localhost:3000"}
