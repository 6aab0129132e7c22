"""Key material: generation with safe file modes, rotation, field encryption and pseudonyms."""

import stat

import pytest

from service.config import load_settings
from service.crypto import load_key_material
from service.crypto.keys import rotate


@pytest.fixture
def settings(tmp_path):
    return load_settings(environ={"INSTANCE_PATH": str(tmp_path)})


def test_development_keys_are_generated_owner_only(settings):
    load_key_material(settings)
    files = list((settings.instance_path / "keys").iterdir())
    assert {f.name for f in files} == {"signing.json", "field.json", "pseudonym.key"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_keys_are_stable_across_restarts(settings):
    first, second = load_key_material(settings), load_key_material(settings)
    assert first.signer.active_kid == second.signer.active_kid
    assert first.pseudonyms.subject(1, "u") == second.pseudonyms.subject(1, "u")


def test_signing_rotation_keeps_old_keys_for_verification(settings):
    before = load_key_material(settings)
    token = before.signer.sign({"hello": "world"})
    new_kid = rotate(settings, "SIGNING_KEYS")
    after = load_key_material(settings)
    assert after.signer.active_kid == new_kid != before.signer.active_kid
    assert after.signer.verify(token) == {"hello": "world"}
    kids = [k["kid"] for k in after.signer.jwks()["keys"]]
    assert kids[0] == new_kid and before.signer.active_kid in kids
    assert after.signer.sign({}).split(".")[0] != token.split(".")[0]


def test_field_rotation_decrypts_old_values(settings):
    before = load_key_material(settings)
    blob = before.fields.encrypt(b"203.0.113.9", "ctx")
    rotate(settings, "FIELD_KEYS")
    after = load_key_material(settings)
    assert after.fields.decrypt(blob, "ctx") == b"203.0.113.9"
    fresh = after.fields.encrypt(b"x", "ctx")
    assert after.fields.key_id(fresh) != after.fields.key_id(blob)


def test_ciphertext_is_bound_to_its_context(settings):
    from cryptography.exceptions import InvalidTag

    fields = load_key_material(settings).fields
    blob = fields.encrypt(b"secret", "consent_event:1:evidence")
    with pytest.raises(InvalidTag):
        fields.decrypt(blob, "consent_event:2:evidence")


def test_pseudonyms_are_keyed_and_per_app(settings, tmp_path):
    p = load_key_material(settings).pseudonyms
    assert p.subject(1, "alice") == p.subject(1, "alice")
    assert p.subject(1, "alice") != p.subject(2, "alice")
    other = load_key_material(load_settings(environ={"INSTANCE_PATH": str(tmp_path / "other")})).pseudonyms
    assert other.subject(1, "alice") != p.subject(1, "alice")


def test_keys_from_environment(settings):
    import json

    from service.crypto.signing import b64url

    ring = json.dumps({"active": "k1", "keys": {"k1": b64url(b"\x01" * 32)}})
    env_settings = load_settings(environ={"INSTANCE_PATH": str(settings.instance_path), "SIGNING_KEYS": ring})
    assert load_key_material(env_settings).signer.active_kid == "k1"
    from service.config import ConfigError

    with pytest.raises(ConfigError, match="environment"):
        rotate(env_settings, "SIGNING_KEYS")
