"""Reading a store's TOML options: typed getters whose errors name the store and the option."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.config import ConfigError


@dataclass(frozen=True)
class StoreContext:
    """What a plugin may need beyond its options: where relative paths start, the environment, the hash key."""

    base_dir: Path
    instance_path: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    hash_key: bytes | None = None

    def expand(self, value: str) -> str:
        """Substitute `{instance}` and `{config_dir}` in a path or URL option."""
        return value.replace("{instance}", str(self.instance_path.resolve())).replace(
            "{config_dir}", str(self.base_dir.resolve()))

    def path(self, value: str) -> Path:
        """A path option: placeholders expanded, relative paths taken from the TOML file's directory."""
        path = Path(self.expand(value)).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()


class Options:
    """One store's (or one table's) options; `done()` rejects any option nobody read."""

    def __init__(self, store: str, data: Mapping[str, Any], where: str = "") -> None:
        self.store = store
        self.where = where
        self._data = dict(data)
        self._read: set[str] = set()

    def error(self, option: str, message: str) -> ConfigError:
        return ConfigError(f"stores[{self.store}]{self.where}.{option}: {message}")

    def has(self, option: str) -> bool:
        return option in self._data

    def raw(self, option: str, default: Any = None) -> Any:
        self._read.add(option)
        return self._data.get(option, default)

    def str(self, option: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(option, default)
        if value is None:
            if required:
                raise self.error(option, "missing (required)")
            return None
        if not isinstance(value, str) or not value:
            raise self.error(option, f"expected a non-empty string, got {value!r}")
        return value

    def int(self, option: str, default: int, minimum: int = 1) -> int:
        value = self.raw(option, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(option, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def table(self, option: str, *, required: bool = False) -> dict[str, Any]:
        value = self.raw(option)
        if value is None:
            if required:
                raise self.error(option, "missing (required)")
            return {}
        if not isinstance(value, dict):
            raise self.error(option, f"expected a table, got {type(value).__name__}")
        return value

    def tables(self, option: str) -> list[Options]:
        """A required, non-empty array of tables, each read as its own Options."""
        value = self.raw(option)
        if not value:
            raise self.error(option, "missing (required): declare at least one [[...]] entry")
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(option, "expected an array of tables")
        return [Options(self.store, v, f"{self.where}.{option}[{i}]") for i, v in enumerate(value)]

    def url(self, ctx: StoreContext, option: str = "url") -> str:
        """A connection URL from `url_env` (an environment variable, for secrets) or else `url`."""
        env_name = self.str(f"{option}_env")
        url = self.str(option)
        if env_name and ctx.environ.get(env_name):
            return ctx.environ[env_name]
        if url is None:
            hint = f" and {env_name} is not set" if env_name else ""
            raise self.error(option, f"missing (required){hint}")
        return ctx.expand(url)

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise self.error(unknown[0], f"unknown option (unknown: {unknown})")
