"""The export folder fills up (a small tmpfs mounted for the test as `[dsar] export_dir`): a store task that
cannot write its part fails with a reason that names no path and no person, and a retry succeeds once space is
back; an archive that does not fit leaves the request open with the reason, the previous archive whole and
downloadable, no partial file behind, and the maintenance pass builds it once it fits."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service.audit import AuditEvent
from tests.dsar.test_robustness import MANAGE, archive_of, broken_toml, submit

BIG = 256 * 1024  # bytes of one document of the subject's
FULL = "ExportNotWritten: the export folder refused a write: No space left on device (ENOSPC)"


class SmallDisk:
    """A tmpfs of a few MiB; `fill(leave)` takes all but `leave` bytes of it with a filler file, `free()` gives
    them back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.filler = folder / "filler"

    def available(self) -> int:
        st = os.statvfs(self.folder)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> None:
        with self.filler.open("ab") as fh:
            fh.write(b"\0" * max(self.available() - leave, 0))
        assert self.available() <= leave

    def free(self) -> None:
        self.filler.unlink()

    def read_only(self, on: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.folder)], check=True)

    def files(self, suffix: str) -> list[Path]:
        return sorted(p for p in self.folder.rglob(f"*{suffix}"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    folder = tmp_path / "exports"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({mounted.stderr.strip() or mounted.returncode}): "
                    "the disk-full tests need root and mount")
    try:
        yield SmallDisk(folder)
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)  # busy: detached now, gone once released


def _audited(app, action: str) -> int:
    with app.extensions["db"].sessions() as session:
        return len(session.scalars(select(AuditEvent.id).where(AuditEvent.action == action)).all())


def test_a_task_that_cannot_write_its_part_fails_clearly_and_a_retry_succeeds(inline_app_with, key_for, small_disk):
    app = inline_app_with(f'export_dir = "{small_disk.folder}"\n')
    client, h = app.test_client(), key_for(app, MANAGE)
    small_disk.fill(leave=0)
    r = submit(client, h, "access", "1")
    assert r["status"] == "failed" and not r["export_ready"], r
    assert {t["state"] for t in r["tasks"]} == {"failed"}
    assert {t["last_error"] for t in r["tasks"]} == {FULL}  # the reason, no path, nothing of the person
    assert client.post(f"/v1/requests/{r['id']}/export-token", headers=h).status_code == 409
    assert small_disk.files(".zip.enc") == [] and small_disk.files(".partial") == []

    small_disk.free()
    again = client.post(f"/v1/requests/{r['id']}/retry", headers=h).json
    assert again["status"] == "completed" and again["export_ready"], again
    names = archive_of(client, h, r["id"]).namelist()
    assert "stores/cloud-photos/contact.json" in names and "summary.json" in names


def test_a_read_only_export_folder_fails_the_tasks_clearly_until_it_is_writable(inline_app_with, key_for,
                                                                                small_disk):
    app = inline_app_with(f'export_dir = "{small_disk.folder}"\n')
    client, h = app.test_client(), key_for(app, MANAGE)
    small_disk.read_only(True)
    r = submit(client, h, "portability", "3")
    assert r["status"] == "failed" and {t["last_error"] for t in r["tasks"]} == {
        "ExportNotWritten: the export folder refused a write: Read-only file system (EROFS)"}, r
    small_disk.read_only(False)
    again = client.post(f"/v1/requests/{r['id']}/retry", headers=h).json
    assert again["status"] == "completed" and again["export_ready"], again


def test_an_archive_that_does_not_fit_never_replaces_the_last_whole_one(inline_app_with, key_for, small_disk,
                                                                       tmp_path):
    flag = tmp_path / "crm-down"
    flag.touch()
    scans = tmp_path / "scans"
    (scans / "2").mkdir(parents=True)
    (scans / "2" / "passport.bin").write_bytes(os.urandom(BIG))  # does not compress: the archive is as large
    app = inline_app_with(f'export_dir = "{small_disk.folder}"\n' + broken_toml(flag=flag)
                          + f'[[stores]]\nname = "scans"\nplugin = "files"\nroot = "{scans}"\n'
                            '  [[stores.paths]]\n  template = "{user_id}/*"\n  category = "documents"\n')
    client, h = app.test_client(), key_for(app, MANAGE)
    r = submit(client, h, "access", "2")
    assert r["status"] == "partially_completed" and r["export_ready"]  # delivered without the store that is down
    [archive] = small_disk.files(".zip.enc")
    first = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert archive.stat().st_size > BIG

    # Room for the returning store's small part, not for a new archive.
    small_disk.fill(leave=BIG // 4)
    flag.unlink()  # the store is back: the retry runs its task, which fits, then rebuilds the archive
    retried = client.post(f"/v1/requests/{r['id']}/retry", headers=h).json
    assert retried["status"] == "in_progress", retried
    assert retried["reason"] == FULL.removeprefix("ExportNotWritten: "), retried
    assert {t["state"] for t in retried["tasks"]} == {"done"}
    # The archive served is still the last whole one; no partial file is left behind.
    assert small_disk.files(".zip.enc") == [archive] and small_disk.files(".partial") == []
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == first
    names = archive_of(client, h, r["id"]).namelist()
    assert "stores/cloud-photos/contact.json" in names and not any(n.startswith("stores/legacy-crm/") for n in names)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["dsar", "maintain"]).exit_code == 0  # still full: the pass tries, and says so once
    assert client.get(f"/v1/requests/{r['id']}", headers=h).json["status"] == "in_progress"
    assert _audited(app, "dsar.export_failed") == 1

    small_disk.free()
    assert runner.invoke(args=["dsar", "maintain"]).exit_code == 0
    done = client.get(f"/v1/requests/{r['id']}", headers=h).json
    assert done["status"] == "completed" and done["reason"] is None, done
    names = archive_of(client, h, r["id"]).namelist()
    assert "stores/legacy-crm/misc.json" in names and "stores/cloud-photos/contact.json" in names
    assert small_disk.files(".partial") == []
