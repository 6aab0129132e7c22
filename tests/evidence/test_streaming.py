"""The sections read in keyset batches: every row once, in key order, across several batches; the period bounds
which rows a section writes."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from governance import evidence
from service.evidence import Context, PackWriter, keyset, write_keys
from service.tenancy import ApiKey


def test_keyset_reads_every_row_once_over_several_batches(app: Flask,
                                                          make_key: Callable[..., dict[str, str]]) -> None:
    for n in range(7):
        make_key(f"app-{n % 2}", "consent:read")
    with app.extensions["db"].sessions() as session:
        ids = [r.id for r in keyset(session, select(ApiKey.id, ApiKey.key_id), ApiKey.id, batch=3)]
    assert ids == sorted(ids) and len(set(ids)) == 7


def test_the_period_bounds_the_rows(app: Flask, make_key: Callable[..., dict[str, str]], tmp_path: Path) -> None:
    make_key("app-a", "consent:read")
    ext = app.extensions
    written = {}
    for name, period in (("past", evidence.period_of(date(2001, 1, 1), date(2001, 12, 31))),
                         ("now", evidence.period_of(date(2001, 1, 1), date(2099, 12, 31)))):
        out = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(out, "w") as zf, ext["db"].sessions() as session:
            pack = PackWriter(zf)
            written[name] = write_keys(session, Context(ext["runtime"], ext["stores"], period), pack)
    assert written["past"]["apiKeys"] == 0 and written["past"]["events"] == 0
    assert written["now"]["apiKeys"] == 1
