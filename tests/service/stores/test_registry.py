"""Registration: plugins resolved by name or module:Class, bad declarations refused at start-up by name."""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest

from privacy import create_app
from service.config import ConfigError
from service.stores import Description, Record, Store, build_registry
from service.stores.contract import check_expire_args, usable
from service.stores.files import FileStore
from service.stores.options import StoreContext
from service.stores.redis_keys import RedisStore
from service.stores.registry import resolve_plugin
from service.stores.sql import SqlStore


class ListStore:
    """A minimal third-party plugin: subjects' notes in a dict (what an author's own plugin would look like)."""

    plugin = "tests"

    def __init__(self, name: str, notes: dict[str, list[str]]) -> None:
        self.name = name
        self.notes = notes

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: StoreContext) -> ListStore:
        if "notes" not in options:
            raise ConfigError(f"stores[{name}].notes: missing (required)")
        return cls(name, {k: list(v) for k, v in options["notes"].items()})

    def describe(self) -> Description:
        return Description(self.name, self.plugin, ("notes",), ("user_id",))

    def access(self, identity: Mapping[str, str]) -> Iterator[Record]:
        uid = usable(self.name, identity, ("user_id",))["user_id"]
        return iter([Record("notes", f"notes/{uid}", {"text": t}) for t in self.notes.get(uid, [])])

    def erase(self, identity: Mapping[str, str], *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        uid = usable(self.name, identity, ("user_id",))["user_id"]
        return {} if "notes" in exclude_categories else {"notes": len(self.notes.pop(uid, []))}

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Mapping[str, str]] = ()) -> Iterator[int]:
        check_expire_args(self.name, ("notes",), category, older_than, batch_size)
        return iter(())

    def health(self) -> None:
        return None

    def close(self) -> None:
        return None


class NotAStore:
    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: StoreContext) -> NotAStore:
        return cls()


def test_built_in_plugins_resolve_without_installing_the_project():
    assert resolve_plugin("sql", "s") is SqlStore
    assert resolve_plugin("files", "s") is FileStore
    assert resolve_plugin("redis", "s") is RedisStore


def test_a_module_class_path_registers_a_third_party_plugin(context):
    registry = build_registry([{"name": "notes", "plugin": f"{__name__}:ListStore", "notes": {"7": ["hi"]}}],
                              context)
    store = registry.get("notes")
    assert isinstance(store, Store) and registry.names() == ["notes"]
    assert [r.fields for r in store.access({"user_id": "7"})] == [{"text": "hi"}]
    assert registry.health() == {"notes": "ok"}


@pytest.mark.parametrize(("declaration", "message"), [
    ({"name": "x", "plugin": "nosuch"}, "stores[x].plugin: unknown plugin 'nosuch'"),
    ({"name": "x", "plugin": "tests.nowhere:Thing"}, "stores[x].plugin: cannot load"),
    ({"name": "x", "plugin": f"{__name__}:NotAStore"}, "stores[x].plugin: "),
    ({"name": "x"}, "stores[x].plugin: missing"),
    ({"name": "Bad Name", "plugin": "sql"}, "stores[0].name"),
    ({"name": "x", "plugin": "files", "paths": [{"template": "{user_id}", "category": "c"}]},
     "stores[x].root: missing"),
    ({"name": "x", "plugin": "files", "root": "/nonexistent/dir", "paths": [{"template": "{user_id}",
                                                                             "category": "c"}]},
     "stores[x].root: "),
    ({"name": "x", "plugin": "files", "root": ".", "paths": [{"template": "{user_id}/{email}", "category": "c"}]},
     "stores[x].paths[0].template"),
    ({"name": "x", "plugin": "files", "root": ".", "paths": [{"template": "../{user_id}", "category": "c"}]},
     "stores[x].paths[0].template"),
    ({"name": "x", "plugin": "files", "root": ".", "colour": "red",
      "paths": [{"template": "{user_id}", "category": "c"}]}, "stores[x].colour: unknown option"),
    ({"name": "x", "plugin": "redis", "url": "redis://127.0.0.1:1/0",
      "keys": [{"template": "s:{user_id}", "category": "c"}]}, "stores[x].url: unreachable"),
    ({"name": "x", "plugin": "redis", "keys": [{"template": "s:{user_id}", "category": "c"}]},
     "stores[x].url: missing"),
    ({"name": "x", "plugin": "sql", "url": "postgresql://postgres@127.0.0.1:1/none",
      "tables": [{"table": "t"}]}, "stores[x].url: unreachable"),
    ({"name": "x", "plugin": "sql", "url": "nosuchdb://x", "tables": [{"table": "t"}]}, "stores[x].url: "),
    ({"name": "x", "plugin": "sql", "url": "sqlite://"}, "stores[x].tables: missing"),
])
def test_a_bad_declaration_names_the_store_and_the_option(context, declaration, message):
    with pytest.raises(ConfigError) as err:
        build_registry([declaration], context)
    assert str(err.value).startswith(message), str(err.value)


def test_a_store_declared_twice_is_refused(context):
    decl = {"name": "n", "plugin": f"{__name__}:ListStore", "notes": {}}
    with pytest.raises(ConfigError, match=r"stores\[n\].name: declared twice"):
        build_registry([decl, decl], context)


def _write_config(tmp_path, body: str) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_create_app_refuses_a_misdeclared_store(base_config, tmp_path):
    config = _write_config(tmp_path, """
        [[stores]]
        name = "crm"
        plugin = "sql"
        url = "sqlite:///crm.sqlite3"

          [[stores.tables]]
          table = "contacts"
          category = "contact"
        """)
    with pytest.raises(ConfigError) as err:
        create_app({**base_config, "PRIVACY_CONFIG": config})
    assert str(err.value) == "stores[crm].tables[0].table: no table 'contacts' in the database"
    assert (tmp_path / "crm.sqlite3").exists()  # a relative SQLite path starts at the config's folder


def test_create_app_refuses_a_store_missing_an_option(base_config, tmp_path):
    config = _write_config(tmp_path, """
        [[stores]]
        name = "uploads"
        plugin = "files"
        root = "."
          [[stores.paths]]
          template = "u/{user_id}/**"
        """)
    with pytest.raises(ConfigError, match=r"^stores\[uploads\]\.paths\[0\]\.category: missing"):
        create_app({**base_config, "PRIVACY_CONFIG": config})


def test_paths_in_the_config_start_at_its_folder_and_includes_nest(base_config, tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "files").mkdir()
    (tmp_path / "shared" / "uploads.toml").write_text(textwrap.dedent("""
        [[stores]]
        name = "shared-uploads"
        plugin = "files"
        root = "files"
          [[stores.paths]]
          template = "{user_id}/*"
          category = "photos"
        """))
    config = _write_config(tmp_path, """
        include_stores = ["shared/uploads.toml"]
        [[stores]]
        name = "notes"
        plugin = "tests.service.stores.test_registry:ListStore"
        notes = {}
        """)
    app = create_app({**base_config, "PRIVACY_CONFIG": config})
    try:
        stores = app.extensions["stores"]
        assert stores.names() == ["shared-uploads", "notes"]
        assert stores.get("shared-uploads").root == tmp_path / "shared" / "files"
    finally:
        app.extensions["db"].dispose()


def test_development_without_a_config_registers_the_local_demo_estate(app):
    stores = app.extensions["stores"]
    assert stores.names() == ["cloud-photos", "uploads"]
    assert stores.health() == {"cloud-photos": "ok", "uploads": "ok"}
