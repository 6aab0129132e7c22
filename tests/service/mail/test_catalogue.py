"""The mail catalogue is complete: every message the email templates use (extracted with service/mail/babel.cfg,
as `pybabel extract` does) has a Simplified Chinese translation, none is fuzzy, the committed .mo says what the
.po says, and a Chinese email holds no English sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import CommandLineInterface, parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.mail.render import KINDS, LOCALES, render
from tests.conftest import ROOT

MAIL = ROOT / "service" / "mail"
PO = MAIL / "translations" / "zh_Hans" / "LC_MESSAGES" / "messages.po"


def _key(msgid: Any) -> Any:
    return tuple(msgid) if isinstance(msgid, list | tuple) else msgid


def _used() -> set[Any]:
    with (MAIL / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    return {_key(m[2]) for m in extract_from_dir(str(MAIL), method_map, options_map)}


def _catalogue() -> Any:
    with PO.open("rb") as fh:
        return read_po(fh)


def _compiled(path: Path) -> dict[Any, Any]:
    with path.open("rb") as fh:
        return {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id}


def test_every_message_is_translated_and_none_is_fuzzy():
    used = _used()
    assert len(used) > 30  # the extraction found the templates
    translated = {_key(m.id): m for m in _catalogue() if m.id}
    assert not sorted(map(str, used - set(translated))), "not in the catalogue: run the extract/update commands"
    empty = sorted(str(k) for k in used if not translated[k].string
                   or (isinstance(translated[k].string, list | tuple) and not all(translated[k].string)))
    assert not empty, f"untranslated in {PO}: {empty}"
    assert not sorted(str(k) for k in used if translated[k].fuzzy), f"fuzzy in {PO}"
    unused = sorted(str(k) for k in set(translated) - used)
    assert not unused, f"in {PO} but used by no template (update with --ignore-obsolete): {unused}"


def test_the_committed_mo_is_compiled_from_the_po(tmp_path):
    out = tmp_path / "messages.mo"
    CommandLineInterface().run(["pybabel", "-q", "compile", "-l", "zh_Hans", "-i", str(PO), "-o", str(out)])
    assert _compiled(PO.with_suffix(".mo")) == _compiled(out), "messages.mo is stale: run pybabel compile"


CONTEXT = {"request_id": "0b6f0a3e", "request_type": "access", "app_name": "Cloud Photos", "code": "204518",
           "minutes": 15, "due": datetime(2026, 12, 20, 9, 30, tzinfo=UTC), "reason": "reason text",
           "link": "https://privacy.example.com/privacy/shop/link/abc", "link_valid_for": timedelta(hours=72),
           "export_ready": True, "export_valid_for": timedelta(hours=72),
           "notice_subject": "About your data", "notice_text": "What happened.\n\nWhat you can do."}
NO_LINK = ("verification_code", "notice")  # the code email, and a notice the sender wrote


def _context(kind: str) -> dict[str, Any]:
    return {**CONTEXT, "link": None} if kind in NO_LINK else CONTEXT


@pytest.mark.parametrize("kind", KINDS)
def test_a_chinese_email_holds_no_english_sentence(kind):
    rendered = render(kind, "zh_Hans", _context(kind))
    for msgid in (m.id for m in _catalogue() if m.id):
        for source in (msgid if isinstance(msgid, list | tuple) else [msgid]):
            fixed = source.split("%(")[0]  # the text before any placeholder
            for part in (rendered.subject, rendered.text, rendered.html):
                assert fixed not in part, (kind, source)
    if kind in ("request_received", "deadline_extended"):
        assert "2026年12月20日" in rendered.text and "2026年12月20日" in rendered.html  # the date in Chinese


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_text_and_html_with_its_facts(kind, locale):
    rendered = render(kind, locale, _context(kind))
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.html.startswith("<!doctype html>") and f'<html lang="{locale.replace("_", "-")}">' in rendered.html
    for part in (rendered.text, rendered.html):
        assert CONTEXT["request_id"] in part and "Cloud Photos" in part
        assert (CONTEXT["link"] in part) == (kind not in NO_LINK)
        assert (CONTEXT["code"] in part) == (kind == "verification_code")
    if kind in ("request_received", "deadline_extended") and locale == "en":
        assert "December 20, 2026" in rendered.text


def test_an_unknown_kind_or_locale_is_refused():
    with pytest.raises(ValueError, match="kind"):
        render("request_status", "en", CONTEXT)
    with pytest.raises(ValueError, match="locale"):
        render("request_received", "fr", CONTEXT)
