"""Settings: environment variables (12-factor) plus an optional TOML file for structured settings.

Every value is validated once at start-up; a bad value raises ConfigError naming it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names it."""


DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"


@dataclass(frozen=True)
class Controller:
    """The PII controller named in consent receipts (Kantara `piiControllers`)."""

    name: str = "Example Electronics Ltd."
    contact: str = "Data Protection Officer"
    email: str = "privacy@example.com"
    phone: str = "+00 000 000 000"
    url: str = "https://example.com/privacy"
    address: Mapping[str, str] = field(
        default_factory=lambda: {"streetAddress": "1 Example Way", "addressCountry": "NL"}
    )
    jurisdiction: str = "EU"


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    instance_path: Path
    production: bool
    signing_keys: str | None
    field_keys: str | None
    pseudonym_key: str | None
    max_content_length: int
    cache_ttl_seconds: float
    issuer: str
    controller: Controller
    # Mail: SMTP_URL (smtp://user:pass@host:587?starttls=1, smtps://...) or, unset, .eml files in instance/mail/.
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = "privacy@localhost"
    # Where people reach this service (links in email and those minted for apps): PUBLIC_URL, no trailing slash.
    public_url: str = "http://127.0.0.1:5000"
    # Proxies in front that set X-Forwarded-For/-Proto (PROXY_HOPS): the client's address (rate limits) and
    # scheme (Secure cookies) are read from them. The Procfile's web process sets 1 for its own nginx.
    proxy_hops: int = 0
    toml: Mapping[str, Any] = field(default_factory=dict)
    # The variables these settings were read from, overrides applied: a domain reads its own settings here (and
    # checks them at start-up), never os.environ at each use. Not in the repr: it holds secrets.
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """An integer setting from `env`, validated; the error names the variable."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name}: must be >= 0, got {value}")
    return value


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret given inline (NAME) or as a file path (NAME_FILE), e.g. a mounted secret."""
    inline, path = env.get(name), env.get(f"{name}_FILE")
    if inline and path:
        raise ConfigError(f"{name} and {name}_FILE are both set; set one")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return inline or None


def _database_url(env: Mapping[str, str], instance: Path) -> str:
    url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'privacy.sqlite3'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants a driver name.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    scheme = url.split(":", 1)[0]
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ConfigError(f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite or postgresql)")
    return url


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("REDIS_URL") or None
    if url and urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"REDIS_URL: expected a redis://, rediss:// or unix:// URL, got {url!r}")
    return url


def _toml(env: Mapping[str, str]) -> dict[str, Any]:
    path = env.get("PRIVACY_CONFIG")
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"PRIVACY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"PRIVACY_CONFIG: {path} is not valid TOML: {exc}") from None


def _controller(data: Mapping[str, Any]) -> Controller:
    section = data.get("controller", {})
    if not isinstance(section, dict):
        raise ConfigError("PRIVACY_CONFIG [controller]: expected a table")
    known = set(Controller.__dataclass_fields__)
    unknown = set(section) - known
    if unknown:
        raise ConfigError(f"PRIVACY_CONFIG [controller]: unknown option(s) {sorted(unknown)}")
    for key, value in section.items():
        if key == "address":
            if not isinstance(value, dict):
                raise ConfigError("PRIVACY_CONFIG [controller].address: expected a table")
        elif not isinstance(value, str) or not value:
            raise ConfigError(f"PRIVACY_CONFIG [controller].{key}: expected a non-empty string")
    return Controller(**section)


def _smtp_url(env: Mapping[str, str]) -> str | None:
    url = env.get("SMTP_URL") or None
    if url is not None and not url.startswith(("smtp://", "smtps://")):
        raise ConfigError("SMTP_URL: expected smtp://user:pass@host:port?starttls=1 or smtps://...")
    return url


def _public_url(env: Mapping[str, str]) -> str:
    url = (env.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"PUBLIC_URL: expected an http(s) URL such as https://privacy.example.com, got {url!r}")
    return url


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; `overrides` (e.g. from tests) take precedence over the environment."""
    env: dict[str, str] = dict(os.environ if environ is None else environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            env[key] = str(value)
    production = env.get("PRIVACY_ENV", "development")
    if production not in {"development", "production"}:
        raise ConfigError(f"PRIVACY_ENV: expected 'development' or 'production', got {production!r}")
    instance = Path(env.get("INSTANCE_PATH") or DEFAULT_INSTANCE)
    data = _toml(env)
    settings = Settings(
        database_url=_database_url(env, instance),
        redis_url=_redis_url(env),
        instance_path=instance,
        production=production == "production",
        signing_keys=_secret(env, "SIGNING_KEYS"),
        field_keys=_secret(env, "FIELD_KEYS"),
        pseudonym_key=_secret(env, "PSEUDONYM_KEY"),
        max_content_length=env_int(env, "MAX_CONTENT_LENGTH", 64 * 1024, minimum=1024),
        cache_ttl_seconds=_float(env, "CACHE_TTL_SECONDS", 5.0),
        issuer=env.get("ISSUER", "urn:privacy-service"),
        controller=_controller(data),
        smtp_url=_smtp_url(env),
        mail_from=env.get("MAIL_FROM") or "privacy@localhost",
        public_url=_public_url(env),
        proxy_hops=env_int(env, "PROXY_HOPS", 0),
        toml=data,
        env=MappingProxyType(env),
    )
    if settings.production and settings.database_url.startswith("sqlite"):
        raise ConfigError("DATABASE_URL: production (PRIVACY_ENV=production) requires PostgreSQL")
    return settings
