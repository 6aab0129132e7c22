"""The shared layer's Flask app: settings, logs, runtime, key cache, stores, the Api, errors and health endpoints.

The composition root (`privacy.create_app`) builds it and then adds the domains; this module knows none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service import api as api_module
from service import cors, errors, logs, ratelimit, revocations, web
from service.auth import KeyCache, KeyUsage
from service.config import Settings, load_settings
from service.runtime import build_runtime
from service.stores.registry import registry_for
from service.stores.routes import blp as stores_blp
from service.wiring import Wiring


def build_app(config: Mapping[str, Any] | None, wiring: Wiring) -> Flask:
    """The app with no domain on it yet. `config` overrides environment variables by name (e.g. DATABASE_URL);
    `wiring` is kept for what the shared endpoints show of the domains (readiness details, the data map)."""
    settings: Settings = load_settings(config)
    app = Flask("service", instance_path=str(settings.instance_path.resolve()))
    app.config.update(api_module.SETTINGS)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["SETTINGS"] = settings
    app.json.sort_keys = False
    if settings.proxy_hops:
        # Behind nginx the peer is a unix socket: without this every client is one address to the rate limits.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,  # type: ignore[method-assign]
                                x_proto=settings.proxy_hops)
    logs.setup(app)

    rt = build_runtime(settings)
    app.extensions["runtime"] = rt
    app.extensions["db"] = rt.db
    app.extensions["keys"] = rt.keys
    app.extensions["queue"] = rt.queue
    app.extensions["key_cache"] = KeyCache(settings.cache_ttl_seconds, revocations.for_database(rt.db))
    app.extensions["key_usage"] = KeyUsage(rt.db)
    app.extensions["stores"] = registry_for(rt, config)
    app.extensions["wiring"] = wiring

    api = api_module.Api(app)
    api.register_blueprint(stores_blp)
    app.register_blueprint(web.blp)
    errors.register(app)
    cors.install(app)
    ratelimit.install(app)
    app.extensions["api"] = api
    return app
