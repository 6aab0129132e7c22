"""Privacy service: the application factory and the pieces every domain shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from service.config import Settings, load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the WSGI app. `config` overrides environment variables by name (e.g. DATABASE_URL)."""
    from service import api as api_module
    from service import cli, errors, logs, revocations, web
    from service.auth import KeyCache
    from service.runtime import build_runtime

    settings: Settings = load_settings(config)
    app = Flask(__name__, instance_path=str(settings.instance_path.resolve()))
    app.config.update(api_module.SETTINGS)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["SETTINGS"] = settings
    app.json.sort_keys = False
    logs.setup(app)

    rt = build_runtime(settings)
    app.extensions["runtime"] = rt
    app.extensions["db"] = rt.db
    app.extensions["keys"] = rt.keys
    app.extensions["queue"] = rt.queue
    app.extensions["key_cache"] = KeyCache(settings.cache_ttl_seconds, revocations.for_database(rt.db))
    from service.stores.registry import registry_for

    app.extensions["stores"] = registry_for(rt, config)
    from retention import config as retention_config

    retention_config.load(rt, app.extensions["stores"])

    api = api_module.Api(app)
    from consent.routes import blp as consent_blp
    from consent.routes import policy_blp

    api.register_blueprint(policy_blp)
    api.register_blueprint(consent_blp)
    from dsar.routes import blp as dsar_blp
    from dsar.routes import holds_blp

    api.register_blueprint(dsar_blp)
    api.register_blueprint(holds_blp)
    from service.stores.routes import blp as stores_blp

    api.register_blueprint(stores_blp)
    from retention.routes import blp as retention_blp

    api.register_blueprint(retention_blp)
    app.register_blueprint(web.blp)
    errors.register(app)
    cli.register(app)
    app.extensions["api"] = api
    from consent import fastpath

    fastpath.install(app)
    return app
