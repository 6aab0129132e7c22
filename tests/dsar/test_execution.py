"""Rights requests executed by real rq workers on the real Redis: exports, erasure with holds, failures,
a worker killed mid-erasure, and Redis losing the queued jobs."""

import io
import json
import zipfile

import jwt
from joserfc import jws
from joserfc.jwk import KeySet
from redis import Redis
from sqlalchemy import select

from dsar import outbox
from dsar.models import DsarDispatch, DsarTask
from tests.conftest import wait_for
from tests.dsar.conftest import PEOPLE, kill_with_horse, person, write_config


def submit(client, headers, type_, user_id, **extra):
    r = client.post("/v1/requests", json={"type": type_, "subject": {"user_id": str(user_id)},
                                          "jurisdiction": "GDPR", "verified": True, **extra}, headers=headers)
    assert r.status_code == 202, r.json
    return r.json


def finished(client, headers, request_id):
    def check():
        body = client.get(f"/v1/requests/{request_id}", headers=headers).json
        return body if body["status"] in ("completed", "partially_completed", "failed") else None
    return check


def download(client, headers, request_id):
    token = client.post(f"/v1/requests/{request_id}/export-token", headers=headers).json["token"]
    r = client.get(f"/v1/requests/{request_id}/export?token={token}", headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.data))


def exported(archive):
    return {name: json.loads(archive.read(name)) for name in archive.namelist()
            if name.startswith("stores/") and name.endswith(".json")}


def _consent_for(client, headers, *subjects):
    client.post("/v1/policies", json={"key": "privacy", "title": "t", "purposes": [
        {"key": "core", "description": "d", "required": True}]}, headers=headers)
    client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True},
                headers=headers)
    return {s: client.post("/v1/consents", json={"subject_id": s, "policy": "privacy", "version": "1",
                                                 "purposes": {"core": True}, "channel": "web", "locale": "en"},
                           headers=headers).json["id"] for s in subjects}


def test_access_export_holds_exactly_the_subjects_data(dsar_app, key_for, dsar_worker):
    client, headers = dsar_app.test_client(), key_for(dsar_app)
    consents = _consent_for(client, headers, "2", "3")
    req = submit(client, headers, "access", 2)
    assert req["status"] == "in_progress" and {t["store"] for t in req["tasks"]} == {"cloud-photos", "uploads",
                                                                                    "sessions"}
    dsar_worker()
    done = wait_for(finished(client, headers, req["id"]))
    assert done["status"] == "completed", done
    archive = download(client, headers, req["id"])
    data = exported(archive)
    me = person(2)
    assert [u["id"] for u in data["stores/cloud-photos/contact.json"]] == [2]
    assert all(r["user_id"] == 2 for name, rows in data.items() for r in rows if "user_id" in r)
    files = [n for n in archive.namelist() if "/files/" in n]
    assert {n.rsplit("/", 1)[1] for n in files if "/photos/" in n} == {p["filename"] for p in me.photos}
    assert all("/2/" in n or n.endswith("/2.png") for n in files)
    assert [e["id"] for e in json.loads(archive.read("consent/history.json"))] == [consents["2"]]
    assert "The data we hold about you" in archive.read("index.html").decode()
    assert data["stores/cloud-photos/contact.json"][0]["email"] == me.user["email"]
    assert sorted(r["id"] for r in data["stores/cloud-photos/device_log.json"]) == sorted(x["id"] for x in me.logs)
    photos = [r for r in data["stores/cloud-photos/photos.json"] if r["source"].startswith("photos")]
    albums = [r for r in data["stores/cloud-photos/photos.json"] if r["source"].startswith("albums")]
    assert sorted(r["id"] for r in photos) == sorted(x["id"] for x in me.photos)
    assert sorted(r["id"] for r in albums) == sorted(x["id"] for x in me.albums)
    assert len(data.get("stores/sessions/sessions.json", [])) == len(me.sessions)
    # nobody else's data anywhere in the archive
    others = [person(i).user["email"] for i in range(1, PEOPLE + 1) if i != 2]
    blob = json.dumps(data)
    assert not any(email in blob for email in others)


def test_export_is_encrypted_at_rest_and_destroyed_after_its_time(inline_app, key_for):
    from pathlib import Path

    from sqlalchemy import update

    from dsar.models import DsarRequest
    from service.db import utcnow
    from service.runtime import use_runtime

    client, headers = inline_app.test_client(), key_for(inline_app)
    req = submit(client, headers, "portability", 3)
    assert req["status"] == "completed" and req["export_ready"]  # in-process: done within the request
    with inline_app.extensions["db"].sessions() as session:
        path = Path(session.get(DsarRequest, req["id"]).export_path)
    raw = path.read_bytes()
    assert raw.startswith(b"PSX1") and person(3).user["email"].encode() not in raw and b"PK" not in raw[:8]
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).values(export_expires_at=utcnow()))
    with use_runtime(inline_app.extensions["runtime"]):
        from dsar.maintenance import purge_exports

        assert purge_exports() == 1
    assert not path.exists()
    r = client.post(f"/v1/requests/{req['id']}/export-token", headers=headers)
    assert r.status_code == 409


def test_download_token_is_single_use(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app)
    req = submit(client, headers, "access", 1)
    token = client.post(f"/v1/requests/{req['id']}/export-token", headers=headers).json["token"]
    assert client.get(f"/v1/requests/{req['id']}/export?token={token}", headers=headers).status_code == 200
    assert client.get(f"/v1/requests/{req['id']}/export?token={token}", headers=headers).status_code == 410
    assert client.get(f"/v1/requests/{req['id']}/export?token={'x' * 43}", headers=headers).status_code == 410


def test_erasure_keeps_held_categories_and_access_then_finds_nothing_else(dsar_app, key_for, dsar_worker):
    client, headers = dsar_app.test_client(), key_for(dsar_app)
    hold = client.post("/v1/holds", json={"subject": {"user_id": "4"}, "store": "cloud-photos",
                                          "category": "orders", "reason": "tax audit 2026"}, headers=headers)
    assert hold.status_code == 201 and hold.json["subject"] is True
    dsar_worker()
    erased = wait_for(finished(client, headers, submit(client, headers, "erasure", 4)["id"]))
    assert erased["status"] == "completed", erased
    photos = next(t for t in erased["tasks"] if t["store"] == "cloud-photos")
    assert photos["kept"] == {"orders": ["tax audit 2026"]}
    me = person(4)
    assert me.orders, "the test needs a person with orders"
    assert photos["counts"]["device_log"] == len(me.logs) and "orders" not in photos["counts"]
    # the certificate verifies with the published JWKS
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    claims = json.loads(jws.deserialize_compact(erased["certificate"], keys, algorithms=["EdDSA"]).payload)
    assert claims["type"] == "erasure-certificate" and claims["request"] == erased["id"]
    assert claims["stores"]["cloud-photos"]["kept"] == {"orders": ["tax audit 2026"]}
    assert jwt.get_unverified_header(erased["certificate"])["alg"] == "EdDSA"

    access = wait_for(finished(client, headers, submit(client, headers, "access", 4)["id"]))
    data = exported(download(client, headers, access["id"]))
    # What survives is the held orders and the account row they still reference (the sql plugin keeps a
    # parent while a held child points to it); every other category is gone.
    assert {k for k, v in data.items() if v} <= {"stores/cloud-photos/orders.json", "stores/cloud-photos/contact.json"}
    assert len(data["stores/cloud-photos/orders.json"]) == len(me.orders)


def test_failing_store_ends_partially_completed_with_the_error(worker_config, tmp_path, key_for, start_worker):
    from tests.dsar.conftest import _app

    extra = '[[stores]]\nname = "legacy-crm"\nplugin = "tests.dsar.plugins:BrokenStore"\n'
    config = {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path, extra)}
    for app in _app(config):
        client, headers = app.test_client(), key_for(app)
        req = submit(client, headers, "erasure", 5)
        start_worker("dsar", config=config)
        done = wait_for(finished(client, headers, req["id"]))
        assert done["status"] == "partially_completed"
        broken = next(t for t in done["tasks"] if t["store"] == "legacy-crm")
        assert broken["state"] == "failed" and broken["attempts"] == 2
        assert "connection refused" in broken["last_error"] and "legacy-crm" in done["reason"]
        assert all(t["state"] == "done" for t in done["tasks"] if t["store"] != "legacy-crm")
        # an operator retries the failed task: it fails again, and says so again
        r = client.post(f"/v1/requests/{req['id']}/retry", headers=headers)
        assert r.status_code == 200 and r.json["status"] == "in_progress" and r.json["closed_at"] is None
        assert wait_for(finished(client, headers, req["id"]))["status"] == "partially_completed"


def test_worker_killed_mid_erasure_then_a_new_worker_completes(worker_config, tmp_path, key_for, start_worker):
    from tests.dsar.conftest import _app
    from tests.dsar.plugins import SlowStore

    archive = SlowStore("archive", {"path": str(tmp_path / "archive.sqlite3")})
    archive.seed([("6", "misc", f"f{i}", "x") for i in range(4)] + [("5", "misc", "f0", "kept")])
    extra = (f'[[stores]]\nname = "archive"\nplugin = "tests.dsar.plugins:SlowStore"\n'
             f'path = "{tmp_path / "archive.sqlite3"}"\nseconds = 0.5\n')
    config = {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path, extra)}
    for app in _app(config):
        client, headers = app.test_client(), key_for(app)
        req = submit(client, headers, "erasure", 6)
        worker = start_worker("dsar", config=config)
        wait_for(lambda: len(archive.rows("6")) < 4)  # the erasure of the archive is under way
        kill_with_horse(worker)  # the worker and its work horse die, as in a crash
        left = len(archive.rows("6"))
        assert 0 < left < 4, "the worker must die in the middle of the erasure"
        task = next(t for t in client.get(f"/v1/requests/{req['id']}", headers=headers).json["tasks"]
                    if t["store"] == "archive")
        assert task["state"] == "running" and task["attempts"] == 1
        rt = app.extensions["runtime"]
        assert outbox.reconcile(rt) == 0  # the lease (2 s here) has not lapsed yet: the task is not taken over
        start_worker("dsar", config=config)

        def reconcile_then_check():
            outbox.reconcile(rt)  # what the scheduler's maintenance pass does every minute
            return finished(client, headers, req["id"])()

        done = wait_for(reconcile_then_check, timeout=30, interval=0.5)
        assert done["status"] == "completed", done
        task = next(t for t in done["tasks"] if t["store"] == "archive")
        assert task["attempts"] == 2 and task["state"] == "done" and task["counts"] == {"misc": left}
        assert archive.rows("6") == [] and archive.rows("5") == [("5", "misc", "f0", "kept")]
        assert next(t for t in done["tasks"] if t["store"] == "cloud-photos")["counts"]["contact"] == 1


def test_reconcile_leaves_queued_jobs_alone(dsar_app, key_for, redis_url):
    from rq.job import Job

    client, headers = dsar_app.test_client(), key_for(dsar_app)
    req = submit(client, headers, "access", 1)
    conn = Redis.from_url(redis_url)
    # One job carries the request's three store tasks (they run side by side), named in each outbox row.
    assert conn.llen("rq:queue:dsar") == 1
    job = Job.fetch(conn.lindex("rq:queue:dsar", 0).decode(), connection=conn)
    with dsar_app.extensions["db"].sessions() as session:
        rows = session.execute(select(DsarDispatch.task_id, DsarDispatch.job).join(DsarTask)
                               .where(DsarTask.request_id == req["id"])).all()
    assert sorted(job.args[0]) == sorted(t for t, _ in rows) and len(rows) == 3
    assert {j for _, j in rows} == {job.id}
    assert outbox.reconcile(dsar_app.extensions["runtime"]) == 0  # their job waits in Redis: no duplicates
    assert conn.llen("rq:queue:dsar") == 1


def test_tasks_sent_again_by_the_reconciler_get_a_job_each(dsar_app, key_for, redis_url):
    """The first dispatch groups a request's tasks; after Redis lost that job, each task is sent alone."""
    from rq.job import Job

    client, headers = dsar_app.test_client(), key_for(dsar_app)
    req = submit(client, headers, "access", 1)
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    assert outbox.reconcile(dsar_app.extensions["runtime"]) == 3
    jobs = [Job.fetch(j.decode(), connection=conn) for j in conn.lrange("rq:queue:dsar", 0, -1)]
    assert sorted(len(job.args[0]) for job in jobs) == [1, 1, 1]
    with dsar_app.extensions["db"].sessions() as session:
        latest = session.execute(select(DsarDispatch.task_id, DsarDispatch.job, DsarDispatch.alone).join(DsarTask)
                                 .where(DsarTask.request_id == req["id"], DsarDispatch.alone.is_(True))).all()
    assert {(t, j) for t, j, _ in latest} == {(job.args[0][0], job.id) for job in jobs}
    assert outbox.reconcile(dsar_app.extensions["runtime"]) == 0  # those jobs wait: nothing sent twice


def test_redis_flushed_with_tasks_queued_then_reconciled(dsar_app, key_for, dsar_worker, redis_url):
    client, headers = dsar_app.test_client(), key_for(dsar_app)
    req = submit(client, headers, "access", 1)
    conn = Redis.from_url(redis_url)
    assert conn.llen("rq:queue:dsar") == 1
    conn.flushdb()  # Redis loses every queued job (and the demo sessions: it is the same database)
    dsar_worker()
    assert client.get(f"/v1/requests/{req['id']}", headers=headers).json["status"] == "in_progress"
    result = dsar_app.test_cli_runner().invoke(args=["dsar", "reconcile"])
    assert result.exit_code == 0 and "re-enqueued 3" in result.output
    assert wait_for(finished(client, headers, req["id"]))["status"] == "completed"
