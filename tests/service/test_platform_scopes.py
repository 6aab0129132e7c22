"""Company-wide endpoints (retention, stores, the data map) need a platform scope that no app's `admin` implies."""

from __future__ import annotations

import pytest

from service.tenancy import APP_SCOPES, PLATFORM_SCOPES, Principal, parse_scopes

POLICY = {"store": "cloud-photos", "category": "device_log", "retain_for": "P90D", "basis": "security logs"}
KEY = "cloud-photos.device_log"

# Each credential by name: (app, scopes). "legacy" holds the scope retention used before platform scopes existed.
CREDENTIALS = {
    "app-admin": ("app-a", ",".join(sorted(APP_SCOPES))),
    "legacy-retention-manage": ("app-a", "retention:manage"),
    "other-app-admin": ("app-b", "admin"),
    "platform-read": ("privacy-office", "platform:read"),
    "platform-retention": ("privacy-office", "platform:retention"),
    "platform-of-another-app": ("app-b", "platform:read,platform:retention"),
}
READERS = {"platform-read", "platform-of-another-app"}
RETAINERS = {"platform-retention", "platform-of-another-app"}

# (method, path, body, status for a key with the scope, who has the scope)
ENDPOINTS = [
    ("GET", "/v1/stores", None, 200, READERS),
    ("GET", "/v1/datamap", None, 200, READERS),
    ("POST", "/v1/retention/policies", {**POLICY, "category": "location", "action": "anonymize"}, 201, RETAINERS),
    ("GET", "/v1/retention/policies", None, 200, RETAINERS),
    ("GET", f"/v1/retention/policies/{KEY}", None, 200, RETAINERS),
    ("PATCH", f"/v1/retention/policies/{KEY}", {"retain_for": "P30D"}, 200, RETAINERS),
    ("GET", f"/v1/retention/policies/{KEY}/versions", None, 200, RETAINERS),
    ("POST", f"/v1/retention/policies/{KEY}/disable", None, 200, RETAINERS),
    ("POST", f"/v1/retention/policies/{KEY}/enable", None, 200, RETAINERS),
    ("POST", "/v1/retention/runs", {"policy": KEY, "dry_run": True}, 202, RETAINERS),
    ("GET", "/v1/retention/runs", None, 200, RETAINERS),
    ("GET", "/v1/retention/runs/<run>", None, 200, RETAINERS),
    ("POST", "/v1/retention/runs/<run>/retry", None, 409, RETAINERS),  # reached the route: the run succeeded
    ("GET", "/v1/retention/runs/<run>/certificate", None, 200, RETAINERS),
]


@pytest.fixture
def keys(make_key):
    return {name: make_key(slug, scopes) for name, (slug, scopes) in CREDENTIALS.items()}


@pytest.fixture
def run_id(client, keys):
    """A policy and a finished destruction run (in-process: done when the POST returns), so every route answers."""
    platform = keys["platform-retention"]
    assert client.post("/v1/retention/policies", json=POLICY, headers=platform).status_code == 201
    r = client.post("/v1/retention/runs", json={"policy": KEY, "dry_run": False}, headers=platform)
    assert r.status_code == 202 and r.json["state"] == "succeeded", r.json
    return r.json["id"]


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
@pytest.mark.parametrize(("method", "path", "body", "ok", "holders"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS])
def test_company_wide_endpoints_need_their_platform_scope(client, keys, run_id, credential, method, path, body,
                                                          ok, holders):
    r = client.open(path.replace("<run>", run_id), method=method, json=body, headers=keys[credential])
    if credential in holders:
        assert r.status_code == ok, r.json
    else:
        assert r.status_code == 403, r.json
        assert "platform:" in r.json["message"] and "admin" in r.json["message"]


def test_every_company_wide_route_is_in_the_matrix(app):
    declared = {(m, p) for m, p, *_ in ENDPOINTS}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/v1/retention", "/v1/stores", "/v1/datamap")):
            continue
        assert app.view_functions[rule.endpoint].required_scope in PLATFORM_SCOPES, rule.rule
        path = rule.rule.replace("<key>", KEY).replace("<run_id>", "<run>")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in declared, f"{method} {rule.rule} missing from ENDPOINTS"


def test_admin_implies_every_app_scope_and_no_platform_scope():
    admin = Principal(app_id=1, app_slug="a", key_id="k", scopes=frozenset({"admin"}))
    assert all(admin.has(scope) for scope in APP_SCOPES)
    assert not any(admin.has(scope) for scope in PLATFORM_SCOPES)
    platform = Principal(app_id=1, app_slug="a", key_id="k", scopes=PLATFORM_SCOPES)
    assert all(platform.has(scope) for scope in PLATFORM_SCOPES)
    assert not any(platform.has(scope) for scope in APP_SCOPES)  # nor the other way round


def test_the_old_retention_scope_is_no_longer_granted():
    with pytest.raises(ValueError, match="platform:retention"):
        parse_scopes("retention:manage")
    assert parse_scopes("platform:retention,consent:read") == {"platform:retention", "consent:read"}


def test_demo_key_can_do_the_readme_walk_through(app, client):
    result = app.test_cli_runner().invoke(args=["demo", "setup"])
    assert result.exit_code == 0, result.output
    secret = result.output.split("export KEY=")[1].split()[0]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/stores", headers=headers).status_code == 200
    assert client.post("/v1/retention/policies", json=POLICY, headers=headers).status_code == 201
    assert client.get("/v1/policies", headers=headers).status_code == 200


def test_migration_0008_renames_retention_manage_and_leaves_admin_alone(empty_database_url):
    from alembic import command
    from sqlalchemy import create_engine, text

    from service.cli import alembic_config

    config = alembic_config(empty_database_url)
    command.upgrade(config, "0007")
    engine = create_engine(empty_database_url)
    rows = {"ops": "consent:read,retention:manage", "app": "admin"}
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO apps (id, slug, name, created_at) VALUES (1, 'a', 'a', :t)"),
                         {"t": "2026-01-01 00:00:00+00:00"})
            for n, (key_id, scopes) in enumerate(rows.items()):
                conn.execute(text("INSERT INTO api_keys (id, key_id, app_id, secret_hash, scopes, created_at) "
                                  "VALUES (:n, :k, 1, 'x', :s, :t)"),
                             {"n": n + 1, "k": key_id, "s": scopes, "t": "2026-01-01 00:00:00+00:00"})
        scopes = "SELECT key_id, scopes FROM api_keys ORDER BY key_id"
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert dict(conn.execute(text(scopes)).all()) == {"app": "admin", "ops": "consent:read,platform:retention"}
        command.downgrade(config, "0007")
        with engine.connect() as conn:
            assert dict(conn.execute(text(scopes)).all()) == rows
    finally:
        engine.dispose()
