"""Every catalogue is complete: each message its package's code and templates use has a Chinese translation,
nothing is left fuzzy, and the compiled .mo the service loads says what the .po says (run `make i18n`)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from tests.conftest import ROOT

CATALOGUES = sorted(p for p in ROOT.glob("**/translations/zh_Hans/LC_MESSAGES/messages.po")
                    if ".venv" not in p.parts)
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def _package(po: Path) -> Path:
    return po.parents[3]  # <package>/translations/zh_Hans/LC_MESSAGES/messages.po


def test_the_web_faces_have_catalogues():
    packages = {_package(p).relative_to(ROOT).as_posix() for p in CATALOGUES}
    assert {"service/pages", "portal"} <= packages


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: _package(p).relative_to(ROOT).as_posix())
def test_every_message_is_translated_and_compiled(po: Path):
    with po.open("rb") as fh:
        catalogue = read_po(fh)
    used = {m[2] if isinstance(m[2], str) else m[2][0]
            for m in extract_from_dir(str(_package(po)), METHODS, options_map={"**/templates/**.html": {}})}
    translated = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue if m.id}
    missing = sorted(used - set(translated))
    assert not missing, f"not in {po} (run make i18n): {missing}"
    empty = sorted(k for k, m in translated.items() if k in used and (
        not m.string or (isinstance(m.string, tuple) and not all(m.string))))
    assert not empty, f"untranslated in {po}: {empty}"
    fuzzy = sorted(k for k, m in translated.items() if k in used and m.fuzzy)
    assert not fuzzy, f"fuzzy in {po}: {fuzzy}"
    with po.with_suffix(".mo").open("rb") as fh:
        compiled = _messages(fh)
    expected = BytesIO()
    write_mo(expected, catalogue)
    expected.seek(0)
    assert compiled == _messages(expected), f"{po.with_suffix('.mo')} is stale"


def _messages(fh: BytesIO | object) -> dict[object, object]:
    def key(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {key(m.id): key(m.string) for m in read_mo(fh) if m.id}
