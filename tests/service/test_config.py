"""Start-up validation: a bad value fails fast with a message naming it."""

import pytest

from privacy import create_app
from service.config import ConfigError, load_settings


@pytest.mark.parametrize(("env", "named"), [
    ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
    ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
    ({"MAX_CONTENT_LENGTH": "lots"}, "MAX_CONTENT_LENGTH"),
    ({"MAX_CONTENT_LENGTH": "10"}, "MAX_CONTENT_LENGTH"),
    ({"CACHE_TTL_SECONDS": "-1"}, "CACHE_TTL_SECONDS"),
    ({"PRIVACY_ENV": "staging"}, "PRIVACY_ENV"),
    ({"PRIVACY_CONFIG": "/nonexistent/privacy.toml"}, "PRIVACY_CONFIG"),
    ({"SIGNING_KEYS_FILE": "/nonexistent/keys.json"}, "SIGNING_KEYS_FILE"),
    ({"PRIVACY_ENV": "production", "DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL"),
])
def test_bad_values_are_named(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=env)


def test_bad_toml_is_named(tmp_path):
    path = tmp_path / "privacy.toml"
    path.write_text("[controller\nname = 1")
    with pytest.raises(ConfigError, match="PRIVACY_CONFIG"):
        load_settings(environ={"PRIVACY_CONFIG": str(path)})
    path.write_text('[controller]\nmail = "x"\n')
    with pytest.raises(ConfigError, match=r"controller.*mail"):
        load_settings(environ={"PRIVACY_CONFIG": str(path)})


def test_controller_from_toml(tmp_path):
    path = tmp_path / "privacy.toml"
    path.write_text('[controller]\nname = "Acme"\njurisdiction = "BR"\n')
    settings = load_settings(environ={"PRIVACY_CONFIG": str(path)})
    assert settings.controller.name == "Acme" and settings.controller.jurisdiction == "BR"


def test_defaults_are_the_embedded_service(tmp_path):
    settings = load_settings(environ={"INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'privacy.sqlite3'}"
    assert settings.redis_url is None and not settings.production


def test_heroku_style_postgres_url_gets_a_driver():
    url = load_settings(environ={"DATABASE_URL": "postgres://u@h/db"}).database_url
    assert url == "postgresql+psycopg://u@h/db"


def test_production_requires_key_material(tmp_path):
    env = {"PRIVACY_ENV": "production", "DATABASE_URL": "postgresql://u@127.0.0.1/x",
           "INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match="SIGNING_KEYS"):
        create_app(env)


def test_malformed_key_ring_is_named(tmp_path):
    with pytest.raises(ConfigError, match="FIELD_KEYS"):
        create_app({"INSTANCE_PATH": str(tmp_path), "FIELD_KEYS": "not json"})
