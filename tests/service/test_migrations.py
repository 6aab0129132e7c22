"""The migrations and the models describe the same schema, and every migration can be undone and redone."""

from __future__ import annotations

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from privacy import load_models
from service.cli import alembic_config
from service.db import Base
from tests.conftest import BACKENDS, scratch_database


def _differences(url: str) -> list[object]:
    load_models()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(database_url):
    assert _differences(database_url) == []


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chain.sqlite3'}"
        return
    with scratch_database(f"privacy_migrations_{os.getpid()}") as url:
        yield url


def test_every_migration_downgrades_and_upgrades_again(empty_url):
    config = alembic_config(empty_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert _differences(empty_url) == []
