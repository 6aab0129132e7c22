"""The store registry: `[[stores]]` declarations resolved to plugins through entry points, checked at start-up."""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any

from service.config import ConfigError, Settings
from service.stores.contract import Store, StoreError
from service.stores.options import StoreContext

GROUP = "privacy_service.stores"
# The built-ins resolve even when the project is not pip-installed (the entry points then do not exist).
BUILTINS = {
    "sql": "service.stores.sql:SqlStore",
    "files": "service.stores.files:FileStore",
    "redis": "service.stores.redis_keys:RedisStore",
}
DEMO_ESTATE = Path(__file__).resolve().parents[2] / "examples" / "estate.toml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_RESERVED = {"name", "plugin"}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_plugin(plugin: str, store: str) -> Any:
    """The plugin class for a `plugin = ...` value: an entry point name, a built-in name, or `module:Class`."""
    where = f"stores[{store}].plugin"
    found = entry_points(group=GROUP, name=plugin)
    try:
        if found:
            return next(iter(found)).load()
        if plugin in BUILTINS:
            return _load(BUILTINS[plugin])
        if ":" in plugin:
            return _load(plugin)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: cannot load {plugin!r}: {exc}") from None
    known = sorted({ep.name for ep in entry_points(group=GROUP)} | set(BUILTINS))
    raise ConfigError(f"{where}: unknown plugin {plugin!r} (known: {known}, or give module:Class)")


class Registry:
    """The declared stores by name; used by the API, the rights-request and retention jobs alike."""

    def __init__(self, stores: Mapping[str, Store] | None = None) -> None:
        self._stores = dict(stores or {})
        self._locations: Mapping[str, tuple[str, ...]] | None = None

    def stores(self) -> list[Store]:
        return list(self._stores.values())

    def names(self) -> list[str]:
        return list(self._stores)

    def get(self, name: str) -> Store:
        try:
            return self._stores[name]
        except KeyError:
            raise StoreError(f"no store named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._stores

    def __iter__(self) -> Iterator[Store]:
        return iter(self._stores.values())

    def __len__(self) -> int:
        return len(self._stores)

    def locations(self) -> Mapping[str, tuple[str, ...]]:
        """The stores that hold each data category, by their descriptions (worked out once: stores are fixed)."""
        if self._locations is None:
            found: dict[str, list[str]] = {}
            for name, store in self._stores.items():
                for category in store.describe().categories:
                    found.setdefault(category, []).append(name)
            self._locations = MappingProxyType({c: tuple(names) for c, names in found.items()})
        return self._locations

    def health(self) -> dict[str, str]:
        """Each store's health as "ok" or "error: <reason>" (reasons name no person)."""
        return {name: check(store) for name, store in self._stores.items()}

    def close(self) -> None:
        for store in self._stores.values():
            store.close()


def check(store: Store) -> str:
    try:
        store.health()
    except StoreError as exc:
        return f"error: {exc}"
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure
        return f"error: {type(exc).__name__}"
    return "ok"


def build_registry(declarations: Any, ctx: StoreContext) -> Registry:
    """Build every declared store; the first bad one raises ConfigError naming it (and closes the others)."""
    if declarations is None:
        return Registry()
    if not isinstance(declarations, list) or not all(isinstance(d, dict) for d in declarations):
        raise ConfigError("stores: expected [[stores]] tables")
    return _build([(d, ctx) for d in declarations])


def _build(entries: list[tuple[dict[str, Any], StoreContext]]) -> Registry:
    stores: dict[str, Store] = {}
    try:
        for i, (decl, ctx) in enumerate(entries):
            name = decl.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigError(f"stores[{i}].name: expected a name of lowercase letters, digits, - or _, "
                                  f"got {name!r}")
            if name in stores:
                raise ConfigError(f"stores[{name}].name: declared twice")
            plugin = decl.get("plugin")
            if not isinstance(plugin, str) or not plugin:
                raise ConfigError(f"stores[{name}].plugin: missing (required)")
            cls = resolve_plugin(plugin, name)
            options = {k: v for k, v in decl.items() if k not in _RESERVED}
            store = cls.from_config(name, options, ctx)
            if not isinstance(store, Store):
                raise ConfigError(f"stores[{name}].plugin: {plugin!r} does not implement the store contract")
            stores[name] = store
    except BaseException:
        Registry(stores).close()
        raise
    return Registry(stores)


def declarations(data: Mapping[str, Any], ctx: StoreContext, seen: tuple[Path, ...] = ()) -> list[
        tuple[dict[str, Any], StoreContext]]:
    """A TOML document's stores: those of its `include_stores` files first, then its own `[[stores]]`.

    Relative paths in each store's options start at the directory of the file that declares it.
    """
    entries: list[tuple[dict[str, Any], StoreContext]] = []
    includes = data.get("include_stores", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError("include_stores: expected a list of TOML file paths")
    for include in includes:
        path = ctx.path(include)
        if path in seen:
            raise ConfigError(f"include_stores: {include} includes itself")
        try:
            with path.open("rb") as fh:
                included = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"include_stores: cannot read {include}: {exc}") from None
        entries += declarations(included, replace(ctx, base_dir=path.parent), (*seen, path))
    own = data.get("stores", [])
    if not isinstance(own, list) or not all(isinstance(d, dict) for d in own):
        raise ConfigError("stores: expected [[stores]] tables")
    return entries + [(d, ctx) for d in own]


def anonymisation_key(keys: Any) -> bytes:
    """The key of `hash` replacements, derived from the pseudonym key (a separate domain: app id 0 is no app)."""
    return bytes.fromhex(keys.pseudonyms.subject(0, "stores:anonymize"))


def registry_from_settings(settings: Settings, overrides: Mapping[str, Any] | None = None,
                           hash_key: bytes | None = None) -> Registry:
    """The registry for an app: the stores of PRIVACY_CONFIG; without one, none in production and the demo
    estate's SQLite and files stores (examples/estate.toml, all local) in development.

    `overrides` are the app's config overrides (they win over the environment, as in load_settings).
    """
    environ = dict(os.environ)
    environ.update({k: str(v) for k, v in (overrides or {}).items() if v is not None})
    config = environ.get("PRIVACY_CONFIG")
    ctx = StoreContext(base_dir=Path.cwd(), instance_path=settings.instance_path, environ=environ,
                       hash_key=hash_key)
    if config:
        return _build(declarations(settings.toml, replace(ctx, base_dir=Path(config).resolve().parent)))
    if settings.production:
        return Registry()
    with DEMO_ESTATE.open("rb") as fh:
        return _build(declarations(tomllib.load(fh), replace(ctx, base_dir=DEMO_ESTATE.parent)))


def registry_for(rt: Any, overrides: Mapping[str, Any] | None = None) -> Registry:
    """The runtime's registry, built on first use: the web app at start-up, an RQ worker at its first job."""
    if rt.stores is None:
        rt.stores = registry_from_settings(rt.settings, overrides, anonymisation_key(rt.keys))
    return rt.stores
