"""Encrypted, streamed export archives: chunked AES-256-GCM under a per-export key wrapped by the field key ring.

Nothing holds a whole export in memory: records are written to encrypted parts as the stores yield them (file
contents to encrypted blobs, chunk by chunk), the archive is assembled from the parts in one streaming pass, and
downloads decrypt chunk by chunk. A write the export folder refuses (full, read-only) raises ExportNotWritten, whose
message names the reason and never a path; an archive is written under a temporary name and renamed once whole, so
a half-written one is never where a download looks.
"""

from __future__ import annotations

import errno
import html
import json
import os
import shutil
import struct
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.crypto import KeyMaterial

CHUNK = 64 * 1024
MAGIC = b"PSX1"


class ExportNotWritten(Exception):
    """The export folder refused a write: full, read-only or gone. The message says why, never where (paths name
    the request and store only, but an operating-system message is not ours to vouch for)."""

    def __init__(self, exc: OSError) -> None:
        code = errno.errorcode.get(exc.errno or 0)
        reason = exc.strerror or type(exc).__name__
        super().__init__(f"the export folder refused a write: {reason}" + (f" ({code})" if code else ""))


@contextmanager
def export_folder() -> Iterator[None]:
    """Turn the operating system's refusal of an export write into ExportNotWritten."""
    try:
        yield
    except OSError as exc:
        raise ExportNotWritten(exc) from None


def new_key(keys: KeyMaterial, request_id: str) -> tuple[bytes, bytes]:
    """A fresh export key and its wrapped form (encrypted by the field key ring, bound to the request)."""
    key = AESGCM.generate_key(bit_length=256)
    return key, keys.fields.encrypt(key, f"export:{request_id}")


def unwrap(keys: KeyMaterial, wrapped: bytes, request_id: str) -> bytes:
    return keys.fields.decrypt(wrapped, f"export:{request_id}")


class EncryptingWriter:
    """A write-only file object: each 64 KiB chunk is sealed with its index and a last-chunk flag as associated
    data, so chunks cannot be reordered, dropped or the file truncated without detection."""

    def __init__(self, path: Path, key: bytes, label: str) -> None:
        self._aead, self._label, self._index = AESGCM(key), label.encode(), 0
        self._buffer = bytearray()
        with export_folder():
            self._fh: IO[bytes] = path.open("wb")
            try:
                self._fh.write(MAGIC)
            except BaseException:
                self._fh.close()
                raise

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def flush(self) -> None:
        with export_folder():
            self._fh.flush()

    def _seal(self, chunk: bytes, last: bool) -> None:
        nonce = os.urandom(12)
        aad = self._label + struct.pack(">Q?", self._index, last)
        sealed = self._aead.encrypt(nonce, chunk, aad)
        with export_folder():
            self._fh.write(struct.pack(">I", len(sealed)) + nonce + sealed)
        self._index += 1

    def close(self) -> None:
        if self._fh.closed:
            return
        try:
            self._seal(bytes(self._buffer), last=True)
        finally:
            with export_folder():
                self._fh.close()  # flushes: a full disk may refuse only now

    def __enter__(self) -> EncryptingWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def decrypt_chunks(path: Path, key: bytes, label: str) -> Iterator[bytes]:
    """The plaintext, chunk by chunk; raises if the file was altered, reordered or cut short."""
    aead, label_b = AESGCM(key), label.encode()
    with path.open("rb") as fh:
        if fh.read(4) != MAGIC:
            raise ValueError("not an export file")
        index, last = 0, False
        while header := fh.read(4):
            if last:
                raise ValueError("data after the last chunk")
            (length,) = struct.unpack(">I", header)
            nonce, sealed = fh.read(12), fh.read(length)
            for flag in (False, True):
                try:
                    chunk = aead.decrypt(nonce, sealed, label_b + struct.pack(">Q?", index, flag))
                except Exception:  # noqa: BLE001, S112 - try the other flag; both failing is tampering
                    continue
                last = flag
                break
            else:
                raise ValueError(f"chunk {index} fails authentication")
            yield chunk
            index += 1
        if not last:
            raise ValueError("export truncated")


def read_lines(path: Path, key: bytes, label: str) -> Iterator[dict[str, Any]]:
    rest = b""
    for chunk in decrypt_chunks(path, key, label):
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            if line:
                yield json.loads(line)
    if rest.strip():
        yield json.loads(rest)


def part_label(request_id: str, store: str) -> str:
    return f"export:{request_id}:part:{store}"


def _file_label(request_id: str, store: str, index: int) -> str:
    return f"export:{request_id}:file:{store}:{index}"


def write_part(parts: Path, store: str, key: bytes, request_id: str, records: Iterable[Any]) -> dict[str, int]:
    """Write a store's records as encrypted JSON lines (`<store>.jsonl.enc`), each file's contents streamed into
    its own encrypted blob beside it. Rewrites the part whole, so a re-run replaces it. Counts per category."""
    counts: dict[str, int] = {}
    files = parts / f"{store}.files"
    shutil.rmtree(files, ignore_errors=True)
    with export_folder():
        parts.mkdir(parents=True, exist_ok=True)
    with EncryptingWriter(parts / f"{store}.jsonl.enc", key, part_label(request_id, store)) as out:
        for index, record in enumerate(records):
            line: dict[str, Any] = {"category": record.category, "source": record.source, "fields": record.fields}
            if record.content is not None:
                with export_folder():
                    files.mkdir(exist_ok=True)
                with record.content() as src, \
                        EncryptingWriter(files / f"{index}.enc", key, _file_label(request_id, store, index)) as dst:
                    shutil.copyfileobj(src, dst, CHUNK)  # type: ignore[misc]
                line["content"] = index
            out.write(json.dumps(line, default=str, ensure_ascii=False).encode() + b"\n")
            counts[record.category] = counts.get(record.category, 0) + 1
    return counts


def _json_array(zf: zipfile.ZipFile, name: str, items: Iterable[Any]) -> None:
    with zf.open(name, "w", force_zip64=True) as entry:
        entry.write(b"[")
        for i, item in enumerate(items):
            entry.write((b",\n" if i else b"\n") + json.dumps(item, default=str, ensure_ascii=False).encode())
        entry.write(b"\n]\n")


def _member(source: str) -> str:
    """A record's source as a safe relative path inside the archive (no absolute paths, no `..`)."""
    return "/".join(p for p in source.replace("\\", "/").split("/") if p not in ("", ".", ".."))


def build_archive(out: Path, key: bytes, request_id: str, parts: dict[str, dict[str, int]], part_dir: Path,
                  consent_history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """One zip (encrypted as it is written): stores/<store>/<category>.json, stores/<store>/files/...,
    consent/history.json, summary.json and an HTML page a person can read. Streams: one record or one chunk
    of a file at a time. Written beside `out` under a temporary name and renamed to `out` only once complete, so
    `out` is always a whole archive (or absent), even when the disk fills up half-way; raises ExportNotWritten
    then, having removed the partial file."""
    partial = out.with_name(out.name + ".partial")
    try:
        with export_folder():
            out.parent.mkdir(parents=True, exist_ok=True)
        _write_archive(partial, key, request_id, parts, part_dir, consent_history, summary)
        with export_folder():
            os.replace(partial, out)
    except BaseException:
        with suppress(OSError):  # a read-only folder refuses this too; there is nothing to remove then
            partial.unlink(missing_ok=True)
        raise


def _write_archive(out: Path, key: bytes, request_id: str, parts: dict[str, dict[str, int]], part_dir: Path,
                   consent_history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    with EncryptingWriter(out, key, f"export:{request_id}:archive") as sink, \
            zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for store, counts in parts.items():
            part, label = part_dir / f"{store}.jsonl.enc", part_label(request_id, store)
            for category in counts:
                _json_array(zf, f"stores/{store}/{category}.json",
                            ({"source": r["source"], **r["fields"]} for r in read_lines(part, key, label)
                             if r["category"] == category))
            for r in read_lines(part, key, label):
                if "content" in r:
                    blob = part_dir / f"{store}.files" / f"{r['content']}.enc"
                    with zf.open(f"stores/{store}/files/{_member(r['source'])}", "w", force_zip64=True) as entry:
                        for chunk in decrypt_chunks(blob, key, _file_label(request_id, store, r["content"])):
                            entry.write(chunk)
        _json_array(zf, "consent/history.json", consent_history)
        zf.writestr("summary.json", json.dumps(summary, indent=2, default=str))
        zf.writestr("index.html", _html(summary))


def _html(summary: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(store)}</td><td>{html.escape(cat)}</td><td>{n}</td></tr>"
        for store, cats in summary["stores"].items() for cat, n in cats.items())
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Your data</title>"
        "<h1>The data we hold about you</h1>"
        f"<p>Request {html.escape(summary['request'])}, prepared {html.escape(str(summary['prepared_at']))}.</p>"
        "<table><tr><th>Where</th><th>What</th><th>Records</th></tr>"
        f"{rows}</table>"
        f"<p>Consent records: {summary['consent_events']}. The JSON files beside this page hold every record.</p>"
        "</html>")
