"""The audit evidence pack: exported from the CLI over data seeded through the API, it verifies; one flipped byte in
any file or in the manifest makes `flask evidence verify` fail naming it; no seeded identity appears in it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.governance.conftest import demo  # noqa: F401 (fixture)
from tests.governance.test_assessments import ANSWERS, BASE

EMAILS = ["ada.lovelace@example.org", "grace.hopper@example.net"]
SUBJECTS = ["subject-7f3a91", "subject-c0ffee42"]
NAMES = ["Ada Lovelace", "Grace Hopper"]


def _seed(app: Flask, headers: dict[str, str]) -> None:
    client = app.test_client()
    for path, body in (("/v1/policies", {"key": "privacy", "title": "t", "purposes": [
            {"key": "core", "description": "d", "required": True}]}),
            ("/v1/policies/privacy/versions", {"version": "1", "text": "t", "material": True})):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 201, r.json
    for subject in SUBJECTS:
        r = client.post("/v1/consents", json={"subject_id": subject, "policy": "privacy", "version": "1",
                                              "purposes": {"core": True}, "channel": "web", "locale": "en"},
                        headers=headers)
        assert r.status_code == 201, r.json
    for i, email in enumerate(EMAILS):
        for kind in ("access", "erasure"):
            r = client.post("/v1/requests", json={"type": kind, "subject": {"email": email, "user_id": SUBJECTS[i]},
                                                  "jurisdiction": "GDPR", "verified": True,
                                                  "contact_email": email, "details": {"name": NAMES[i]}},
                                 headers=headers)
            assert r.status_code == 202, r.json
    cli = app.test_cli_runner()
    assert cli.invoke(args=["ledger", "verify"]).exit_code in (0, 1)


def _export(app: Flask, out: Path) -> Any:
    result = app.test_cli_runner().invoke(args=["evidence", "export", "--from", "2020-01-01", "--to", "2099-12-31",
                                                "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result


def _verify(app: Flask, pack: Path) -> Any:
    return app.test_cli_runner().invoke(args=["evidence", "verify", str(pack)])


def _flip(src: Path, dst: Path, name: str) -> None:
    """Copy the pack with one byte of `name`'s content changed (the entry rewritten, so only its hash differs)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == name:
                data = data[:-2] + bytes([data[-2] ^ 0x01]) + data[-1:]
            zout.writestr(info.filename, data)


@pytest.fixture
def pack(app: Flask, demo: dict[str, str], tmp_path: Path) -> Path:  # noqa: F811
    _seed(app, demo)
    out = tmp_path / "pack.zip"
    _export(app, out)
    return out


def test_pack_verifies_and_holds_every_section(app: Flask, pack: Path) -> None:
    result = _verify(app, pack)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK ")
    names = set(zipfile.ZipFile(pack).namelist())
    for name in ("manifest.jws", "index.json", "clauses_27701.json", "keys/api_keys.jsonl", "keys/history.jsonl",
                 "consent/ledger_verifications.jsonl", "dsar/register.jsonl", "dsar/on_time.json",
                 "dsar/erasure_certificates.jsonl", "retention/runs.jsonl", "holds/holds.jsonl",
                 "governance/processors.jsonl", "governance/assessments.jsonl", "governance/findings_open.jsonl"):
        assert name in names, name
    index = json.loads(zipfile.ZipFile(pack).read("index.json"))
    register = [json.loads(line) for line in zipfile.ZipFile(pack).read("dsar/register.jsonl").splitlines()]
    assert len(register) == index["sections"][[s["name"] for s in index["sections"]].index("dsar")]["summary"][
        "requests"] == 4
    clauses = {c["clause"]: c["title"] for s in index["sections"] for c in s["clauses"]}
    assert clauses["7.2.8"] == "Records related to processing PII" and all(clauses.values())


@pytest.mark.parametrize("name", ["dsar/register.jsonl", "keys/api_keys.jsonl", "index.json",
                                  "consent/ledger_verifications.jsonl", "clauses_27701.json"])
def test_a_flipped_byte_in_a_file_fails_naming_it(app: Flask, pack: Path, tmp_path: Path, name: str) -> None:
    bad = tmp_path / "bad.zip"
    _flip(pack, bad, name)
    result = _verify(app, bad)
    assert result.exit_code == 1
    assert f"FAIL {name}: SHA-256 does not match" in result.output


def test_a_flipped_byte_in_the_manifest_fails_naming_it(app: Flask, pack: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    _flip(pack, bad, "manifest.jws")
    result = _verify(app, bad)
    assert result.exit_code == 1 and "FAIL manifest.jws: signature does not verify" in result.output


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_a_flipped_byte_in_the_raw_zip_fails(app: Flask, pack: Path, tmp_path: Path, where: float) -> None:
    """A byte flipped in the archive itself (not a rewritten entry): its CRC, inflate error or hash names it."""
    data = bytearray(pack.read_bytes())
    with zipfile.ZipFile(pack) as zf:
        info = zf.getinfo("dsar/register.jsonl")
    start = info.header_offset + 30 + int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little") \
        + int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")  # past name and extra
    data[start + int(info.compress_size * where)] ^= 0xFF
    bad = tmp_path / "raw.zip"
    bad.write_bytes(bytes(data))
    result = _verify(app, bad)
    assert result.exit_code == 1 and "FAIL dsar/register.jsonl" in result.output


def test_no_seeded_identity_appears_anywhere_in_the_pack(pack: Path) -> None:
    with zipfile.ZipFile(pack) as zf:
        for name in zf.namelist():
            text = zf.read(name).decode("utf-8").lower()
            for needle in [*EMAILS, *SUBJECTS, *NAMES]:
                assert needle.lower() not in text, (name, needle)


def test_signed_governance_records_are_in_the_pack_as_the_sha256_of_their_jws(
        app: Flask, demo: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """The pack holds a snapshot's and an approval's SHA-256, to match against the `jws` the API shows."""
    client = app.test_client()
    snap = client.post("/v1/governance/ropa/snapshots", headers=demo).json
    made = client.post(BASE, json={"app": "demo", "title": "Photos"}, headers=demo).json
    assert client.patch(f"{BASE}/{made['id']}", json={"answers": ANSWERS}, headers=demo).status_code == 200
    assert client.post(f"{BASE}/{made['id']}/submit", headers=demo).status_code == 200
    done = client.post(f"{BASE}/{made['id']}/approve", json={"approver": "C. Officer"}, headers=demo).json
    out = tmp_path / "pack.zip"
    _export(app, out)
    with zipfile.ZipFile(out) as z:
        in_pack = json.loads(z.read("governance/ropa_snapshot.json"))
        [approval] = [json.loads(line) for line in z.read("governance/assessments.jsonl").splitlines()]
    assert in_pack["tokenSha256"] == hashlib.sha256(snap["jws"].encode()).hexdigest()
    assert approval["tokenSha256"] == hashlib.sha256(done["jws"].encode()).hexdigest() and "jws" not in approval
