"""What keeps requests from hanging or lying: the failed state, retries that rebuild exports, stranded requests
closed by the reconciler, leases renewed while a job runs and fenced against a run taken over, configuration
checked at start-up, and the migration matching the models."""

import io
import threading
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.dates import format_date
from sqlalchemy import select, update

from dsar import outbox
from dsar import service as dsar
from dsar.models import DsarRequest, DsarTask
from privacy import create_app
from service.config import ConfigError
from service.mail.models import MailMessage
from service.runtime import use_runtime
from tests.dsar.conftest import person, write_config
from tests.dsar.plugins import SlowStore

MANAGE = "dsar:submit,dsar:manage"


def submit(client, headers, type_="access", user_id="1", **extra):
    r = client.post("/v1/requests", json={"type": type_, "subject": {"user_id": user_id}, "jurisdiction": "GDPR",
                                          "verified": True, **extra}, headers=headers)
    assert r.status_code == 202, r.json
    return r.json


def archive_of(client, headers, request_id):
    token = client.post(f"/v1/requests/{request_id}/export-token", headers=headers).json["token"]
    r = client.get(f"/v1/requests/{request_id}/export?token={token}", headers=headers)
    assert r.status_code == 200
    return zipfile.ZipFile(io.BytesIO(r.data))


def broken_toml(name="legacy-crm", flag=None):
    line = f'down_while = "{flag}"\n' if flag else ""
    return f'[[stores]]\nname = "{name}"\nplugin = "tests.dsar.plugins:BrokenStore"\n{line}'


def test_a_request_where_nothing_succeeded_is_failed_not_completed(inline_app_with, key_for, tmp_path):
    only_broken = tmp_path / "broken-estate.toml"
    only_broken.write_text(broken_toml())
    app = inline_app_with("", estate=str(only_broken))
    client, h = app.test_client(), key_for(app, MANAGE)
    r = submit(client, h, "erasure")
    assert r["status"] == "failed" and r["reason"] == "failed stores: legacy-crm" and r["certificate"] is None
    task = r["tasks"][0]
    assert task["state"] == "failed" and task["attempts"] == 2 and "connection refused" in task["last_error"]


def test_retry_after_a_partial_failure_rebuilds_the_export(inline_app_with, key_for, tmp_path):
    flag = tmp_path / "crm-down"
    flag.touch()
    app = inline_app_with(broken_toml(flag=flag))
    client, h = app.test_client(), key_for(app, MANAGE)
    r = submit(client, h, "access", "2")
    assert r["status"] == "partially_completed" and r["export_ready"]  # what was found is delivered already
    assert not any(n.startswith("stores/legacy-crm/") for n in archive_of(client, h, r["id"]).namelist())
    flag.unlink()  # the store is back
    again = client.post(f"/v1/requests/{r['id']}/retry", headers=h).json
    assert again["status"] == "completed", again
    names = archive_of(client, h, r["id"]).namelist()
    assert "stores/legacy-crm/misc.json" in names and "stores/cloud-photos/contact.json" in names


def test_export_carries_file_contents_byte_for_byte(inline_app, key_for, instance_path):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    r = submit(client, h, "portability", "3")
    archive = archive_of(client, h, r["id"])
    files = [n for n in archive.namelist() if n.startswith("stores/uploads/files/")]
    me = person(3)
    assert {n.rsplit("/", 1)[1] for n in files if "/photos/" in n} == {p["filename"] for p in me.photos}
    for name in files:
        on_disk = instance_path / "demo" / "uploads" / name.removeprefix("stores/uploads/files/")
        assert archive.read(name) == on_disk.read_bytes()
    assert all(f"/{me.user['id']}" in n for n in files)


def test_reconciler_closes_a_request_whose_closing_was_lost(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    r = submit(client, h, "erasure", "4")
    db = inline_app.extensions["db"]
    with db.session() as session:  # as if the process died after the last task, before closing
        session.execute(update(DsarRequest).values(status="in_progress", certificate=None, closed_at=None))
    assert outbox.reconcile(inline_app.extensions["runtime"]) == 0  # no task to run again
    closed = client.get(f"/v1/requests/{r['id']}", headers=h).json
    assert closed["status"] == "completed" and closed["certificate"]


def test_a_running_job_renews_its_lease_and_a_taken_over_run_drops_its_result(inline_app_with, key_for, tmp_path):
    from dsar.jobs import run_task

    archive = SlowStore("archive", {"path": str(tmp_path / "a.sqlite3")})
    archive.seed([("1", "misc", f"f{i}", "x") for i in range(6)])
    app = inline_app_with(f'[[stores]]\nname = "archive"\nplugin = "tests.dsar.plugins:SlowStore"\n'
                          f'path = "{tmp_path / "a.sqlite3"}"\nseconds = 0.3\n')
    rt, db = app.extensions["runtime"], app.extensions["db"]
    key_for(app)
    with db.session() as session:  # submitted without dispatching: the test runs the job itself
        from service.tenancy import App

        app_id = session.scalar(select(App.id).where(App.slug == "mi-home"))
        req = dsar.submit(session, rt, dsar.Actor(app_id, "key:test"), {
            "type": "erasure", "subject": {"user_id": "1"}, "jurisdiction": "GDPR", "verified": True},
            can_verify=True)
        request_id = req.id
    with db.sessions() as session:
        task_id = session.scalar(select(DsarTask.id).where(DsarTask.request_id == request_id,
                                                           DsarTask.store == "archive"))

    def lease():
        with db.sessions() as session:
            return session.get(DsarTask, task_id).lease_until

    def run():
        with use_runtime(rt):
            run_task(task_id)

    job = threading.Thread(target=run)
    job.start()
    from tests.conftest import wait_for

    first = wait_for(lease, timeout=5, interval=0.05)
    assert wait_for(lambda: (lease() or first) > first, timeout=3, interval=0.05)  # renewed while running
    with db.session() as session:  # the reconciler gave the task to another run (attempt 2)
        session.execute(update(DsarTask).where(DsarTask.id == task_id).values(attempts=2))
    job.join(timeout=10)
    with db.sessions() as session:
        task = session.get(DsarTask, task_id)
        assert (task.state, task.attempts, task.counts) == ("running", 2, {})  # run 1's result was dropped


def test_extension_must_come_within_the_first_period_and_is_notified(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    body = {"type": "access", "subject": {"user_id": "1"}, "jurisdiction": "GDPR", "contact_email": "a@b.example"}
    late, fine = (client.post("/v1/requests", json=body, headers=h).json["id"] for _ in range(2))
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).where(DsarRequest.id == late)
                        .values(due_at=datetime.now(UTC) - timedelta(hours=1)))
    assert client.post(f"/v1/requests/{late}/extend", json={"reason": "complex"}, headers=h).status_code == 409
    r = client.post(f"/v1/requests/{fine}/extend", json={"reason": "many stores"}, headers=h)
    assert r.status_code == 200
    from service.mail.outbox import read

    with inline_app.extensions["db"].sessions() as session:
        note = session.scalars(select(MailMessage).where(MailMessage.ref == fine,
                                                         MailMessage.kind == "deadline_extended")).one()
        content = read(inline_app.extensions["keys"], note)
        to, text = content.recipient, content.text
    due = format_date(date.fromisoformat(r.json["due_at"][:10]), "long", locale="en")  # the request's locale
    assert to == "a@b.example" and "many stores" in text and due in text


@pytest.mark.parametrize(("toml", "named"), [
    ("code_ttl_minutes = 0\n", "[dsar].code_ttl_minutes"),
    ('keep_consent_proof = "yes"\n', "[dsar].keep_consent_proof"),
    ('download_token_minutes = "ten"\n', "[dsar].download_token_minutes"),
    ("lease = 5\n", "unknown option(s) ['lease']"),
    ('[dsar.deadlines.X]\nperiod = {amount = 1, unit = "weeks"}\n', "[dsar.deadlines.X]"),
    ('notifier = "tests.dsar.plugins:nobody"\n', "[dsar].notifier"),
    ('bulk_stores = "cloud-photos"\n', "[dsar].bulk_stores"),
    ('bulk_stores = ["cloud-photo"]\n', "[dsar].bulk_stores: no such store(s) ['cloud-photo']"),
    ("bulk_export_records = -1\n", "[dsar].bulk_export_records"),
])
def test_bad_dsar_config_stops_start_up(base_config, tmp_path, toml, named):
    config = {**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, toml, "estate.toml")}
    with pytest.raises(ConfigError) as err:
        create_app(config)
    assert named in str(err.value)


def test_migration_0003_matches_the_models(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from privacy import load_models
    from service.db import Base

    load_models()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    ours = [d for d in diff if any(str(getattr(x, "name", "")).startswith(("dsar_", "notifications"))
                                   or "dsar_" in str(x) for x in (d if isinstance(d, tuple) else d[0]))]
    assert ours == [], ours


def test_dsar_cli_maintain_runs_the_pass(inline_app):
    result = inline_app.test_cli_runner().invoke(args=["dsar", "maintain"])
    assert result.exit_code == 0 and "dispatched=0 reconciled=0 exports_destroyed=0" in result.output


def test_a_configured_notifier_sends_the_codes(inline_app_with, key_for):
    from tests.dsar import plugins

    plugins.SENT.clear()
    app = inline_app_with('notifier = "tests.dsar.plugins:collect"\n')
    client, h = app.test_client(), key_for(app, "dsar:submit")
    rid = client.post("/v1/requests", json={"type": "access", "subject": {"user_id": "1"}, "jurisdiction": "GDPR",
                                            "contact_email": "ana@example.com"}, headers=h).json["id"]
    [message] = plugins.SENT
    assert (message.kind, message.recipient, message.request_id) == ("verification_code", "ana@example.com", rid)
    code = message.body.split("code is ")[1][:6]
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": code}, headers=h).json["status"] == "completed"
    assert [m.kind for m in plugins.SENT] == ["verification_code", "request_received", "request_completed"]
    # every notice but the code carries its own link to the request's page
    links = [m.context.get("link") for m in plugins.SENT]
    assert links[0] is None and all(links[1:]) and links[1] != links[2] and links[2] in plugins.SENT[2].body
    with app.extensions["db"].sessions() as session:
        assert session.scalars(select(MailMessage)).all() == []  # the outbox is the default only
