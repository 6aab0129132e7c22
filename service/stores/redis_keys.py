"""The `redis` plugin: keys located by templates such as `session:{user_id}:*`, found with SCAN (never KEYS)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from service.stores.contract import (
    SUBJECTS,
    BatchHook,
    Description,
    ExpiresByTimestamp,
    Identity,
    ListsSubjectsByTimestamp,
    NotApplicable,
    Record,
    StoreError,
    StoreUnavailable,
    usable,
)
from service.stores.options import Options, StoreContext
from service.stores.templates import Template

# A key's timestamp in the scripts below: epoch seconds in a hash field, or in a field of a JSON object stored as a
# string; nil for other keys.
_STAMP = """
local function stamp(key, field)
  local kind = redis.call('TYPE', key)['ok']
  local ts = nil
  if kind == 'hash' then
    ts = redis.call('HGET', key, field)
  elseif kind == 'string' then
    local ok, doc = pcall(cjson.decode, redis.call('GET', key))
    if ok and type(doc) == 'table' then ts = doc[field] end
  end
  return tonumber(ts)
end
"""

# Checks and deletes one batch atomically, so a key whose timestamp is refreshed meanwhile is never lost.
# Returns the keys it found old enough (and deleted, unless dry).
_EXPIRE_SCRIPT = _STAMP + """
local field, cutoff, dry = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local hit = {}
for _, key in ipairs(KEYS) do
  local ts = stamp(key, field)
  if ts and ts < cutoff then
    hit[#hit + 1] = key
    if not dry then redis.call('UNLINK', key) end
  end
end
return hit
"""

# One batch of `subjects`: the keys (after KEYS[1], a scratch set) whose timestamp is in [since, until); each one's
# subject value (ARGV[3 + i], aligned with KEYS[1 + i]) goes into the scratch set, and the values new to it come
# back. So each subject is returned once per call, and the set lives in Redis, not in the caller.
_SUBJECTS_SCRIPT = _STAMP + """
local field, since, untl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local seen, new = KEYS[1], {}
for i = 2, #KEYS do
  local ts = stamp(KEYS[i], field)
  if ts and ts >= since and ts < untl and redis.call('SADD', seen, ARGV[2 + i]) == 1 then
    new[#new + 1] = ARGV[2 + i]
  end
end
redis.call('EXPIRE', seen, 3600)
return new
"""
# The scratch set's name (under the store's prefix): removed when the listing ends, or an hour after its last batch.
_SCRATCH = "privacy-service:subjects:"


def _escape(value: str) -> str:
    """Escape a value for a SCAN MATCH pattern so it matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in value)


def _text(value: bytes) -> Any:
    text = value.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _chunks(keys: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    while chunk := list(islice(keys, size)):
        yield chunk


class RedisStore(ExpiresByTimestamp, ListsSubjectsByTimestamp):
    """Keys in one Redis database; `[[stores.keys]]` entries map a key template to a category.

    `prefix` is prepended to every template (a namespace per deployment or test run). Keys whose template
    names a `timestamp_field` can expire and be listed by `subjects`; others are left to Redis's own TTLs.
    """

    plugin = "redis"

    def __init__(self, name: str, client: Redis, templates: list[tuple[Template, str | None]],
                 scan_count: int, prefix: str = "") -> None:
        self.name = name
        self.prefix = prefix
        self.client = client
        self.templates = templates
        self.scan_count = scan_count
        self._expire_script = client.register_script(_EXPIRE_SCRIPT)
        self._subjects_script = client.register_script(_SUBJECTS_SCRIPT)

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: StoreContext) -> RedisStore:
        opts = Options(name, options)
        url = opts.url(ctx)
        prefix = opts.str("prefix", "") if opts.has("prefix") else ""
        scan_count = opts.int("scan_count", 500)
        templates = []
        for entry in opts.tables("keys"):
            template = Template.read(entry)
            template = Template(prefix + template.text, template.identity_type, template.category)
            templates.append((template, entry.str("timestamp_field")))
            entry.done()
        opts.done()
        try:
            client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        except ValueError as exc:
            raise opts.error("url", f"invalid Redis URL: {exc}") from None
        store = cls(name, client, templates, scan_count, prefix)
        try:
            store.health()
        except StoreUnavailable as exc:
            raise opts.error("url", f"unreachable: {exc}") from None
        return store

    def describe(self) -> Description:
        return Description(self.name, self.plugin, tuple(dict.fromkeys(t.category for t, _ in self.templates)),
                           tuple(dict.fromkeys(t.identity_type for t, _ in self.templates)), (SUBJECTS,))

    def subjects(self, category: str, since: datetime, until: datetime, *,
                 batch_size: int = 1000) -> Iterator[list[dict[str, str]]]:
        """See the contract; a category with keys of no `timestamp_field` has no record time: StoreError."""
        untimed = [t for t, field in self.templates if t.category == category and field is None]
        if untimed and category in self.describe().categories:
            raise StoreError(f"store {self.name}: category {category!r} has keys without a timestamp_field, so "
                             "whose records fall in a time window cannot be told")
        return super().subjects(category, since, until, batch_size=batch_size)

    def _subjects(self, category: str, since: float, until: float) -> Iterator[dict[str, str]]:
        seen = f"{self.prefix}{_SCRATCH}{uuid.uuid4().hex}"
        try:
            for template, field in self.templates:
                if template.category != category or field is None:
                    continue
                pattern = template.value_pattern(paths=False)
                for chunk in _chunks(self._scan(template.for_everyone()), self.scan_count):
                    keys, values = [], []
                    for key in chunk:
                        found = pattern.fullmatch(key.decode("utf-8", errors="replace"))
                        if found is not None:
                            keys.append(key)
                            values.append(f"{template.identity_type}\x00{found.group('value')}")
                    if keys:
                        for new in self._subjects_script(keys=[seen, *keys], args=[field, repr(since), repr(until),
                                                                                      *values]):
                            kind, _, value = new.decode("utf-8", errors="replace").partition("\x00")
                            yield {kind: value}
        finally:
            self.client.unlink(seen)

    def _usable(self, identity: Identity) -> dict[str, str]:
        return usable(self.name, identity, {t.identity_type for t, _ in self.templates})

    def _scan(self, pattern: str) -> Iterator[bytes]:
        return self.client.scan_iter(match=pattern, count=self.scan_count)

    def _subject_keys(self, ids: dict[str, str], exclude: Collection[str] = ()) -> Iterator[tuple[str, bytes]]:
        for template, _ in self.templates:
            value = ids.get(template.identity_type)
            if value is not None and template.category not in exclude:
                for key in self._scan(template.for_subject(value, _escape)):
                    yield template.category, key

    def access(self, identity: Identity) -> Iterator[Record]:
        ids = self._usable(identity)
        return self._records(ids)

    def _records(self, ids: dict[str, str]) -> Iterator[Record]:
        for category, key in self._subject_keys(ids):
            value = self._value(key)
            if value is not None:
                name = key.decode("utf-8", errors="replace")
                yield Record(category=category, source=name, fields={"key": name, **value})

    def _value(self, key: bytes) -> dict[str, Any] | None:
        kind = self.client.type(key).decode()
        data: Any
        if kind == "string":
            raw = self.client.get(key)
            data = None if raw is None else _text(raw)
        elif kind == "hash":
            data = {k.decode(errors="replace"): _text(v) for k, v in self.client.hgetall(key).items()}
        elif kind == "list":
            data = [_text(v) for v in self.client.lrange(key, 0, -1)]
        elif kind == "set":
            data = sorted(_text(v) for v in self.client.smembers(key))
        elif kind == "zset":
            data = [[_text(m), s] for m, s in self.client.zrange(key, 0, -1, withscores=True)]
        else:  # gone meanwhile ("none") or a type holding no subject data (streams are not used here)
            return None
        return {"type": kind, "value": data}

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        counts = {c: 0 for c in self.describe().categories if c not in exclude_categories}
        ids = self._usable(identity)
        for template, _ in self.templates:
            value = ids.get(template.identity_type)
            if value is None or template.category in exclude_categories:
                continue
            for chunk in _chunks(self._scan(template.for_subject(value, _escape)), self.scan_count):
                counts[template.category] += int(self.client.unlink(*chunk))
        return counts

    def _expire(self, category: str, cutoff: float, batch_size: int, dry_run: bool,
                exclude_subjects: Collection[Identity], on_batch: BatchHook | None = None) -> Iterator[int]:
        held = self._held(exclude_subjects)
        for template, field in self.templates:
            if template.category != category or field is None:
                continue
            candidates = (k for k in self._scan(template.for_everyone()) if k not in held)
            for chunk in _chunks(candidates, batch_size):
                if on_batch is not None:
                    # The keys go to the hook before they are deleted: find them first, then delete those.
                    chunk = self._expire_script(keys=chunk, args=[field, repr(cutoff), "1"])
                    if not chunk:
                        continue
                    on_batch([k.decode("utf-8", errors="backslashreplace") for k in chunk])
                count = len(self._expire_script(keys=chunk, args=[field, repr(cutoff), "1" if dry_run else "0"]))
                if count:
                    yield count

    def _held(self, exclude_subjects: Collection[Identity]) -> set[bytes]:
        held: set[bytes] = set()
        for identity in exclude_subjects:
            try:
                ids = self._usable(identity)
            except NotApplicable:
                continue
            held.update(key for _, key in self._subject_keys(ids))
        return held

    def health(self) -> None:
        try:
            self.client.ping()
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    def close(self) -> None:
        self.client.close()
