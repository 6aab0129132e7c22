"""The `files` plugin: a directory tree where path templates locate each subject's files."""

from __future__ import annotations

import glob
import os
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from service.stores.contract import (
    SUBJECTS,
    BatchHook,
    Description,
    ExpiresByTimestamp,
    Identity,
    ListsSubjectsByTimestamp,
    NotApplicable,
    Record,
    StoreUnavailable,
    usable,
)
from service.stores.options import Options, StoreContext
from service.stores.templates import Template


def _safe_segment(value: str) -> bool:
    # An identity value becomes one path segment: it must not climb out of or across directories.
    return bool(value) and value not in {".", ".."} and "/" not in value and "\x00" not in value \
        and os.sep not in value


def _mtime(path: Path, default: float) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # deleted since it was listed
        return default


class FileStore(ExpiresByTimestamp, ListsSubjectsByTimestamp):
    """Files under `root`; `[[stores.paths]]` entries map a template such as `uploads/{user_id}/**` to a category.

    Only regular files count (symbolic links are ignored, so nothing outside `root` is ever read or deleted);
    expiry, and the window of `subjects`, use each file's modification time.
    """

    plugin = "files"

    def __init__(self, name: str, root: Path, templates: list[Template]) -> None:
        self.name = name
        self.root = root
        self.templates = templates

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: StoreContext) -> FileStore:
        opts = Options(name, options)
        root_text = opts.str("root", required=True)
        assert root_text is not None
        root = ctx.path(root_text)
        if opts.raw("create_root", False) is True:
            root.mkdir(parents=True, exist_ok=True)
        templates = []
        for entry in opts.tables("paths"):
            template = Template.read(entry)
            if template.text.startswith("/") or ".." in Path(template.text).parts:
                raise entry.error("template", "must be relative to root and stay inside it")
            entry.done()
            templates.append(template)
        opts.done()
        store = cls(name, root, templates)
        try:
            store.health()
        except StoreUnavailable as exc:
            raise opts.error("root", str(exc)) from None
        return store

    def describe(self) -> Description:
        return Description(self.name, self.plugin, tuple(dict.fromkeys(t.category for t in self.templates)),
                           tuple(dict.fromkeys(t.identity_type for t in self.templates)), (SUBJECTS,))

    def _matches(self, pattern: str) -> Iterator[Path]:
        for rel in glob.iglob(pattern, root_dir=self.root, recursive=True):
            path = self.root / rel
            if not path.is_symlink() and path.is_file():
                yield path

    def _usable(self, identity: Identity) -> dict[str, str]:
        return usable(self.name, identity, {t.identity_type for t in self.templates})

    def _subject_files(self, ids: dict[str, str], exclude: Collection[str] = ()) -> Iterator[tuple[Template, Path]]:
        seen: set[Path] = set()
        for template in self.templates:
            value = ids.get(template.identity_type)
            if value is None or template.category in exclude or not _safe_segment(value):
                continue
            for path in self._matches(template.for_subject(value, glob.escape)):
                if path not in seen:
                    seen.add(path)
                    yield template, path

    def access(self, identity: Identity) -> Iterator[Record]:
        ids = self._usable(identity)  # NotApplicable now, not at the first next()
        return (self._record(t, p) for t, p in self._subject_files(ids))

    def _record(self, template: Template, path: Path) -> Record:
        stat = path.stat()

        def opener(p: Path = path) -> IO[bytes]:
            return p.open("rb")

        return Record(category=template.category, source=str(path.relative_to(self.root)),
                      fields={"path": str(path.relative_to(self.root)), "size": stat.st_size,
                              "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat()},
                      content=opener)

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        counts = {c: 0 for c in self.describe().categories if c not in exclude_categories}
        for template, path in list(self._subject_files(self._usable(identity), exclude_categories)):
            if self._delete(path):
                counts[template.category] += 1
        return counts

    def _delete(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Directories named after the subject are personal data too: remove the ones left empty.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True

    def _expire(self, category: str, cutoff: float, batch_size: int, dry_run: bool,
                exclude_subjects: Collection[Identity], on_batch: BatchHook | None = None) -> Iterator[int]:
        held = self._held(exclude_subjects)
        batch: list[Path] = []
        for template in self.templates:
            if template.category != category:
                continue
            for path in self._matches(template.for_everyone()):
                if path in held or path.stat().st_mtime >= cutoff:
                    continue
                batch.append(path)
                if len(batch) >= batch_size:
                    yield self._flush(batch, dry_run, on_batch)
                    batch = []
        if batch:
            yield self._flush(batch, dry_run, on_batch)

    def _subjects(self, category: str, since: float, until: float) -> Iterator[dict[str, str]]:
        """Each subject once whose files of `category` include one modified in the window. What was yielded is
        remembered as (type, value) pairs: glob holds a folder's whole listing anyway, and a folder of subjects
        has an entry per subject, so this adds memory of the same order, not more."""
        seen: set[tuple[str, str]] = set()
        for template in self.templates:
            if template.category != category:
                continue
            pattern = template.value_pattern(paths=True)
            for path in self._matches(template.for_everyone()):
                found = pattern.fullmatch(path.relative_to(self.root).as_posix())
                if found is None or not _safe_segment(value := found.group("value")):
                    continue
                key = (template.identity_type, value)
                if key in seen or not since <= _mtime(path, default=until) < until:
                    continue
                seen.add(key)
                yield {template.identity_type: value}

    def _held(self, exclude_subjects: Collection[Identity]) -> set[Path]:
        held: set[Path] = set()
        for identity in exclude_subjects:
            try:
                ids = self._usable(identity)
            except NotApplicable:
                continue
            held.update(p for _, p in self._subject_files(ids))
        return held

    def _flush(self, batch: list[Path], dry_run: bool, on_batch: BatchHook | None = None) -> int:
        if dry_run:
            return len(batch)
        if on_batch is not None:
            on_batch([str(path.relative_to(self.root)) for path in batch])
        return sum(1 for path in batch if self._delete(path))

    def health(self) -> None:
        if not self.root.is_dir():
            raise StoreUnavailable(f"{self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StoreUnavailable(f"{self.root} is not readable and writable")

    def close(self) -> None:
        return None

