"""Shared fixtures: the app on each real database backend, clean tables per test, tenants and keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service import create_app
from service.cli import alembic_config
from service.db import Base
from service.tenancy import create_app_tenant, create_key

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [b for b in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if b]


def _fresh_postgres_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database on each backend; the whole suite runs once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite3'}"
    else:
        url = _fresh_postgres_database(f"privacy_test_{os.getpid()}")
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def base_config(database_url: str, instance_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance_path)}


@pytest.fixture(scope="session")
def session_app(base_config: dict[str, str]) -> Iterator[Flask]:
    app = create_app(base_config)
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].engine.dispose()


def _truncate(app: Flask) -> None:
    db = app.extensions["db"]
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def app(session_app: Flask) -> Iterator[Flask]:
    yield session_app
    _truncate(session_app)
    session_app.extensions["key_cache"].clear()
    session_app.extensions.pop("policy_cache", None)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Any]:
    with app.extensions["db"].sessions() as session:
        yield session


@pytest.fixture
def make_key(app: Flask) -> Callable[..., dict[str, str]]:
    """make_key("app-a", "consent:read,admin") -> Authorization headers; creates the app when needed."""

    def make(slug: str, scopes: str) -> dict[str, str]:
        from sqlalchemy import select

        from service.tenancy import App

        with app.extensions["db"].session() as session:
            if session.scalar(select(App.id).where(App.slug == slug)) is None:
                create_app_tenant(session, slug)
            _, secret = create_key(session, slug, frozenset(scopes.split(",")))
        return {"Authorization": f"Bearer {secret}"}

    return make
