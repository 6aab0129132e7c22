"""Every request finishes and no task runs more than `[dsar] task_attempts` times: an identity some store cannot
use (each request type, in-process and on a real rq worker), a worker killed in its last attempt, and a result
that cannot be recorded."""

import pytest
from sqlalchemy import select

from dsar import outbox
from dsar.models import DsarTask
from service.audit import AuditEvent
from tests.conftest import wait_for
from tests.dsar.conftest import kill_with_horse, person, write_config
from tests.dsar.plugins import SlowStore, UnrecordableStore

MANAGE = "dsar:submit,dsar:manage"
LIMIT = 2  # task_attempts in tests.dsar.conftest.write_config
FINAL = ("completed", "partially_completed", "failed")
MANUAL = {"rectification", "restriction", "objection"}


def email_only(user_id=2):
    return {"email": person(user_id).user["email"]}


def submit(client, headers, type_, subject, **extra):
    r = client.post("/v1/requests", json={"type": type_, "subject": subject, "jurisdiction": "GDPR",
                                          "verified": True, **extra}, headers=headers)
    assert r.status_code == 202, r.json
    return r.json


def view(client, headers, request_id):
    return client.get(f"/v1/requests/{request_id}", headers=headers).json


def profile_toml(tmp_path):
    """A store that supports rectification and knows its people by user_id only (tests.dsar.plugins)."""
    return (f'[[stores]]\nname = "profile"\nplugin = "tests.dsar.plugins:EditableStore"\n'
            f'path = "{tmp_path / "profile.sqlite3"}"\n')


EXTRA = {"rectification": {"details": {"corrections": {"contact": {"phone": "+44 20 7946 0000"}}}}}
# The stores (or pseudo-stores) that cannot use an email address, per type, on the demo estate plus `profile`.
BLIND = {"access": {"uploads", "profile"}, "portability": {"uploads", "profile"}, "erasure": {"uploads", "profile"},
         "rectification": {"profile"}, "restriction": set(), "objection": set(), "consent_withdrawal": {"_consent"}}


@pytest.mark.parametrize("type_", sorted(BLIND))
def test_every_type_finishes_when_a_store_cannot_use_the_identity(inline_app_with, key_for, tmp_path, type_):
    app = inline_app_with(profile_toml(tmp_path))
    client, h = app.test_client(), key_for(app, MANAGE)
    req = submit(client, h, type_, email_only(), **EXTRA.get(type_, {}))
    if type_ in MANUAL:
        assert req["status"] == "in_progress"
        r = client.post(f"/v1/requests/{req['id']}/complete", json={"reason": "done by hand"}, headers=h)
        assert r.status_code == 200, r.json
        req = r.json
    assert req["status"] == "completed", req
    tasks = {t["store"]: t for t in req["tasks"]}
    for store in BLIND[type_]:
        assert tasks[store]["state"] == "not_applicable" and tasks[store]["attempts"] == 1, tasks[store]
        assert "cannot look up" in tasks[store]["note"] or "user_id" in tasks[store]["note"]
        assert person(2).user["email"] not in tasks[store]["note"]
    assert all(t["attempts"] <= 1 for t in req["tasks"]), req["tasks"]
    if type_ in ("access", "portability"):
        assert req["export_ready"] and tasks["cloud-photos"]["state"] == "done"
    if type_ == "erasure":
        assert req["certificate"] and tasks["cloud-photos"]["state"] == "done", tasks["cloud-photos"]
    # the maintenance pass finds nothing left to do: the attempts stay where they are
    rt = app.extensions["runtime"]
    assert outbox.reconcile(rt) == 0
    assert view(client, h, req["id"])["tasks"] == req["tasks"]


def test_email_only_requests_finish_on_a_real_worker(dsar_app, key_for, dsar_worker):
    client, h = dsar_app.test_client(), key_for(dsar_app, MANAGE)
    access = submit(client, h, "access", email_only(3))
    withdrawal = submit(client, h, "consent_withdrawal", email_only(3))
    dsar_worker()
    for req, blind in ((access, {"uploads", "sessions"}), (withdrawal, {"_consent"})):
        done = wait_for(lambda r=req: (v := view(client, h, r["id"]))["status"] in FINAL and v)
        assert done["status"] == "completed", done
        tasks = {t["store"]: t for t in done["tasks"]}
        assert {s for s, t in tasks.items() if t["state"] == "not_applicable"} == blind
        assert all(t["attempts"] == 1 for t in done["tasks"]), done["tasks"]
    assert view(client, h, access["id"])["export_ready"]


def _task(app, request_id, store):
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(DsarTask).where(DsarTask.request_id == request_id, DsarTask.store == store))


def test_a_result_that_cannot_be_recorded_counts_as_an_attempt(inline_app_with, key_for, tmp_path):
    odd = UnrecordableStore("odd", {"path": str(tmp_path / "odd.sqlite3")})
    odd.seed([("1", "misc", "f", "x")])
    app = inline_app_with(f'[[stores]]\nname = "odd"\nplugin = "tests.dsar.plugins:UnrecordableStore"\n'
                          f'path = "{tmp_path / "odd.sqlite3"}"\n')
    client, h = app.test_client(), key_for(app, MANAGE)
    req = submit(client, h, "erasure", {"user_id": "1"})
    assert req["status"] == "partially_completed", req
    task = {t["store"]: t for t in req["tasks"]}["odd"]
    assert task["state"] == "failed" and task["attempts"] == LIMIT
    assert "could not record" in task["last_error"] and "odd" in req["reason"]
    assert odd.rows("1") == []  # the store did its work; the task says what went wrong afterwards
    assert outbox.reconcile(app.extensions["runtime"]) == 0
    assert view(client, h, req["id"])["tasks"] == req["tasks"]


def test_a_task_whose_last_attempt_died_is_failed_not_run_again(inline_app_with, key_for, tmp_path):
    """In-process: the reconciler meets a `running` task whose lease lapsed in its last attempt."""
    from sqlalchemy import update

    from service.db import utcnow

    app = inline_app_with("")
    client, h = app.test_client(), key_for(app, MANAGE)
    req = submit(client, h, "erasure", {"user_id": "1"})
    with app.extensions["db"].session() as session:  # as a worker killed in attempt LIMIT leaves it
        session.execute(update(DsarTask).where(DsarTask.request_id == req["id"], DsarTask.store == "uploads")
                        .values(state="running", attempts=LIMIT, lease_until=utcnow()))
        from dsar.models import DsarRequest

        session.execute(update(DsarRequest).where(DsarRequest.id == req["id"])
                        .values(status="in_progress", certificate=None, closed_at=None))
    rt = app.extensions["runtime"]
    for _ in range(3):
        assert outbox.reconcile(rt) == 0
    done = view(client, h, req["id"])
    task = {t["store"]: t for t in done["tasks"]}["uploads"]
    assert task["state"] == "failed" and task["attempts"] == LIMIT, task
    assert f"{LIMIT} attempt" in task["last_error"]
    assert done["status"] == "partially_completed" and "uploads" in done["reason"]
    with app.extensions["db"].sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.resource_type == "dsar_task")))
    assert "dsar.task_failed" in actions


def test_worker_killed_in_every_attempt_ends_failed_at_the_limit(worker_config, tmp_path, key_for, start_worker):
    from tests.dsar.conftest import _app

    archive = SlowStore("archive", {"path": str(tmp_path / "archive.sqlite3")})
    archive.seed([("6", "misc", f"f{i}", "x") for i in range(40)])
    extra = (f'[[stores]]\nname = "archive"\nplugin = "tests.dsar.plugins:SlowStore"\n'
             f'path = "{tmp_path / "archive.sqlite3"}"\nseconds = 0.3\n')
    config = {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path, extra)}
    for app in _app(config):
        client, h = app.test_client(), key_for(app, MANAGE)
        rt = app.extensions["runtime"]
        req = submit(client, h, "erasure", {"user_id": "6"})
        for attempt in range(1, LIMIT + 1):
            before = len(archive.rows("6"))
            worker = start_worker("dsar", config=config)
            wait_for(lambda b=before: len(archive.rows("6")) < b, timeout=30)  # this attempt is erasing
            kill_with_horse(worker)
            task = _task(app, req["id"], "archive")
            assert (task.state, task.attempts) == ("running", attempt)
            # once the lease (2 s) lapses the reconciler hands the task on, or gives up after the last attempt
            wait_for(lambda: outbox.reconcile(rt) or _task(app, req["id"], "archive").state != "running",
                     timeout=15, interval=0.5)
        start_worker("dsar", config=config)  # a worker for the other stores' re-sent jobs, if any

        def closed():
            outbox.reconcile(rt)
            body = view(client, h, req["id"])
            return body if body["status"] in FINAL else None

        done = wait_for(closed, timeout=30, interval=0.5)
        task = {t["store"]: t for t in done["tasks"]}["archive"]
        assert task["state"] == "failed" and task["attempts"] == LIMIT, task
        assert done["status"] == "partially_completed" and "archive" in done["reason"]
        assert 0 < len(archive.rows("6")) < 40  # two attempts, each cut short
        for _ in range(2):
            outbox.reconcile(rt)
        assert _task(app, req["id"], "archive").attempts == LIMIT
