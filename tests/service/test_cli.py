"""Operator commands: apps, keys (printed alone on stdout), rotation, migrations."""

from sqlalchemy import select

from service.audit import AuditEvent
from service.tenancy import ApiKey


def test_create_app_and_key_prints_only_the_key(app, client, db_session):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["apps", "create", "mi-home"]).exit_code == 0
    result = runner.invoke(args=["keys", "create", "--app", "mi-home", "--scopes", "consent:read"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert "\n" not in key and key.startswith("psk_") and len(key) > 60
    assert client.get("/v1/policies", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    row = db_session.scalars(select(ApiKey)).one()
    assert key not in (row.secret_hash, row.key_id) and len(row.secret_hash) == 64
    actions = set(db_session.scalars(select(AuditEvent.action)))
    assert {"app.created", "key.created"} <= actions


def test_cli_errors_are_clear(app):
    runner = app.test_cli_runner()
    assert "slug" in runner.invoke(args=["apps", "create", "Bad Slug"]).output
    runner.invoke(args=["apps", "create", "mi-home"])
    dup = runner.invoke(args=["apps", "create", "mi-home"])
    assert dup.exit_code != 0 and "already exists" in dup.output
    bad = runner.invoke(args=["keys", "create", "--app", "mi-home", "--scopes", "consent:read,root"])
    assert bad.exit_code != 0 and "root" in bad.output
    missing = runner.invoke(args=["keys", "create", "--app", "nope", "--scopes", "admin"])
    assert missing.exit_code != 0 and "nope" in missing.output
    assert runner.invoke(args=["keys", "revoke", "0000"]).exit_code != 0


def test_rotate_signing_publishes_both_keys(tmp_path, base_config):
    from privacy import create_app

    fresh = create_app({**base_config, "INSTANCE_PATH": str(tmp_path)})
    old = fresh.extensions["keys"].signer.active_kid
    result = fresh.test_cli_runner().invoke(args=["keys", "rotate-signing"])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip()
    restarted = create_app({**base_config, "INSTANCE_PATH": str(tmp_path)})
    kids = [k["kid"] for k in restarted.test_client().get("/.well-known/jwks.json").json["keys"]]
    assert kids == [new, old]
    assert fresh.test_cli_runner().invoke(args=["keys", "rotate-field"]).exit_code == 0
    fresh.extensions["db"].dispose()
    restarted.extensions["db"].dispose()
