"""The composition root: the domains this service is made of, wired onto the shared layer (`service`).

Every process starts here: the web app and the CLI through `create_app` (wsgi.py), the worker through
`privacy.worker`, the scheduler through `privacy.cron`, Alembic through `load_models`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from flask import Flask

from service import cli, mail, pages
from service.app import build_app
from service.db import MODEL_MODULES
from service.evidence import KEYS_SECTION
from service.wiring import Wiring
from service.wiring import install as install_wiring

# The domain packages, each with a `register(wiring)`. Adding a domain is one line here (and its migration).
DOMAINS = (
    "consent",
    "dsar",
    "holds",
    "retention",
    "incidents",
    "governance",
)
# The web faces, built on the domains (they may import any domain; no domain imports them).
FACES = (
    "portal",
    "console",
)


@cache
def wiring() -> Wiring:
    """What every domain registers, in DOMAINS order (built once per process)."""
    wired = Wiring()
    mail.register(wired)  # shared, not a domain: its delivery job and sweep
    wired.evidence.append(KEYS_SECTION)  # shared: API key and signing-key history in the evidence pack
    for name in (*DOMAINS, *FACES):
        importlib.import_module(name).register(wired)
    install_wiring(wired)  # for the hooks code without Flask calls (e.g. on_erasure_completed in a job)
    return wired


def load_models() -> None:
    """Import every module that declares tables, the shared layer's and the domains': the ORM maps them all
    whichever one a process starts from, and Alembic compares against all of them."""
    for name in (*MODEL_MODULES, *wiring().model_modules):
        importlib.import_module(name)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the WSGI app. `config` overrides environment variables by name (e.g. DATABASE_URL)."""
    wired = wiring()
    load_models()
    app = build_app(config, wired)
    rt, stores, api = app.extensions["runtime"], app.extensions["stores"], app.extensions["api"]
    for start in wired.on_runtime:
        start(rt, stores)
    for blueprint in wired.blueprints:
        api.register_blueprint(blueprint)
    pages.install(app, wired.pages, wired.translations)
    cli.register(app, wired.cli_groups)
    for install in wired.on_app:
        install(app)
    return app
