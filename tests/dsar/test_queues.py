"""Rights requests on several real rq workers started as the Procfile starts them: one request's store tasks run
side by side (threads of one job, or bulk stores' jobs on different workers), and a small request is not held back
by another's large export or bulk store."""

from datetime import datetime, timedelta

import pytest
from redis import Redis
from rq import Worker
from rq.job import Job
from sqlalchemy import func, insert, select

from dsar.completion import close_job_id
from service.audit import AuditEvent
from service.stores import demo
from tests.conftest import procfile_queues, wait_for
from tests.dsar.conftest import _app, write_config
from tests.dsar.test_execution import finished, submit

HEAVY = 40_000  # device-log rows of the heavy subject in each large store: seconds of work for its task

ARCHIVE = """
[[stores]]
name = "photo-archive"
plugin = "sql"
url = "sqlite:///{path}"
prepare = "service.stores.demo:create_schema"

  [[stores.tables]]
  table = "device_logs"
  category = "device_log"
  identity = {{ user_id = "user_id" }}
  timestamp_column = "logged_at"
"""


def _weigh(app, store, user_id, rows=HEAVY):
    """Give `user_id` `rows` more device-log rows in `store`: its task on that store is slow by volume alone."""
    engine = app.extensions["stores"].get(store).engine
    at = datetime(2026, 11, 1)
    with engine.begin() as conn:
        if conn.scalar(select(demo.users.c.id).where(demo.users.c.id == user_id)) is None:
            conn.execute(insert(demo.users), [{"id": user_id, "created_at": at, "last_seen_at": at}])
        conn.execute(insert(demo.device_logs), [
            {"user_id": user_id, "device_id": f"d{i % 7}", "ip_address": "192.0.2.1", "event": "sync",
             "logged_at": at + timedelta(seconds=i)} for i in range(rows)])


def _workers(start_worker, config, count):
    """`count` workers on the Procfile's queues, all waiting for jobs before the test goes on."""
    for _ in range(count):
        start_worker(*procfile_queues(), config=config)
    redis = Redis.from_url(config["REDIS_URL"])
    wait_for(lambda: len(Worker.all(connection=redis)) == count, timeout=60)
    return redis


def _runs(app, request_id):
    """The finished runs of the request's tasks, from the audit trail: store -> (worker, started, ended)."""
    with app.extensions["db"].sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "dsar.task_done"))
        runs = {}
        for row in rows:
            if row.details["request"] == request_id:
                ended = row.at
                runs[row.details["store"]] = (row.details["worker"],
                                              ended - timedelta(seconds=row.details["seconds"]), ended)
        return runs


def _task(client, headers, request_id, store):
    body = client.get(f"/v1/requests/{request_id}", headers=headers).json
    return next(t for t in body["tasks"] if t["store"] == store)


@pytest.fixture
def estate(worker_config, tmp_path):
    """The demo estate (SQL and files) plus a second SQL store, `photo-archive`: (config, extra [dsar] lines)."""

    def make(dsar=""):
        extra = dsar + ARCHIVE.format(path=tmp_path / "archive.sqlite3")
        return {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path, extra, estate="estate.toml")}

    return make


@pytest.mark.parametrize("bulk", [False, True], ids=["dsar", "dsar_bulk"])
def test_one_requests_store_tasks_run_at_once(estate, key_for, start_worker, bulk):
    """A request's two large stores: on the `dsar` queue their tasks are one job and run side by side in its
    threads (one after the other on SQLite, which takes one writer at a time); marked bulk, each is a job of its
    own and they run on two workers at once."""
    config = estate('bulk_stores = ["cloud-photos", "photo-archive"]\n' if bulk else "")
    for app in _app(config):
        _weigh(app, "cloud-photos", 1)
        _weigh(app, "photo-archive", 1)
        client, headers = app.test_client(), key_for(app)
        redis = _workers(start_worker, config, 2)
        req = submit(client, headers, "access", 1)
        done = wait_for(finished(client, headers, req["id"]), timeout=180, interval=0.5)
        assert done["status"] == "completed", done
        runs = _runs(app, req["id"])
        (one, start1, end1), (two, start2, end2) = runs["cloud-photos"], runs["photo-archive"]
        if bulk:
            assert one != two, "the two bulk stores' tasks ran on the same worker"
        else:
            assert one == two, "one request's tasks on the dsar queue are one job"
        if bulk or app.extensions["db"].dialect != "sqlite":
            assert start1 < end2 and start2 < end1, f"the tasks did not overlap: {runs}"
        else:
            assert end1 <= start2 or end2 <= start1, f"SQLite: the tasks should run one after the other: {runs}"
        # Both large tasks together exceed [dsar] bulk_export_records (10,000 by default): the export was
        # assembled on the bulk queue after the store tasks, by the last bulk task's job itself, or else by a
        # close job handed there.
        if bulk:
            assert not Job.exists(close_job_id(req["id"]), connection=redis)
        else:
            close = Job.fetch(close_job_id(req["id"]), connection=redis)
            assert close.origin == "dsar_bulk" and close.get_status() == "finished"
        counts = {t["store"]: t["counts"].get("device_log", 0) for t in done["tasks"]}
        assert counts["photo-archive"] == HEAVY and counts["cloud-photos"] > HEAVY


def test_a_small_request_completes_while_a_bulk_store_task_of_another_runs(estate, key_for, start_worker):
    """Two workers; request A's task on a large store (marked bulk) runs long; request B, submitted after, has only
    small tasks: B completes while A's task is still running, and A completes after."""
    config = estate('bulk_stores = ["cloud-photos"]\n')
    for app in _app(config):
        _weigh(app, "cloud-photos", 1, rows=2 * HEAVY)
        client, headers = app.test_client(), key_for(app)
        _workers(start_worker, config, 2)
        a = submit(client, headers, "access", 1)
        wait_for(lambda: _task(client, headers, a["id"], "cloud-photos")["state"] == "running", timeout=60)
        b = submit(client, headers, "access", 2)
        done_b = wait_for(finished(client, headers, b["id"]), timeout=60)
        assert done_b["status"] == "completed", done_b
        assert _task(client, headers, a["id"], "cloud-photos")["state"] == "running", \
            "A's large task ended before B completed: nothing showed B was not held back"
        done_a = wait_for(finished(client, headers, a["id"]), timeout=180, interval=0.5)
        assert done_a["status"] == "completed", done_a
        assert datetime.fromisoformat(done_b["closed_at"]) < datetime.fromisoformat(done_a["closed_at"])
        assert _task(client, headers, a["id"], "cloud-photos")["counts"]["device_log"] > 2 * HEAVY


def test_a_large_export_is_assembled_after_store_tasks_waiting_on_one_worker(estate, key_for, start_worker):
    """One worker: while A's large store task runs, B is submitted. A's export (over bulk_export_records) is not
    assembled by A's task but handed to the bulk queue, so the worker takes B's waiting store tasks first."""
    config = estate("bulk_export_records = 1000\n")
    for app in _app(config):
        _weigh(app, "photo-archive", 1)
        client, headers = app.test_client(), key_for(app)
        redis = _workers(start_worker, config, 1)
        a = submit(client, headers, "access", 1)
        wait_for(lambda: _task(client, headers, a["id"], "photo-archive")["state"] == "running", timeout=60)
        b = submit(client, headers, "access", 2)
        done_b = wait_for(finished(client, headers, b["id"]), timeout=180, interval=0.2)
        done_a = wait_for(finished(client, headers, a["id"]), timeout=180, interval=0.5)
        assert done_a["status"] == done_b["status"] == "completed", (done_a, done_b)
        # B's store tasks, queued while A's ran, went before A's assembly, which closed A
        assert datetime.fromisoformat(done_b["closed_at"]) < datetime.fromisoformat(done_a["closed_at"])
        assert Job.fetch(close_job_id(a["id"]), connection=redis).origin == "dsar_bulk"
        # B's export was small: its last task assembled it, no close job
        assert not Job.exists(close_job_id(b["id"]), connection=redis)


def test_the_reconciler_hands_a_lost_close_job_to_the_bulk_queue(estate, key_for, start_worker):
    """Redis loses a large export's close job (flushed before any worker took it): the maintenance pass enqueues it
    again on the bulk queue, and a worker of the Procfile's queues closes the request."""
    from dsar import outbox

    config = estate("bulk_export_records = 1000\n")
    for app in _app(config):
        _weigh(app, "photo-archive", 1, rows=5_000)
        client, headers = app.test_client(), key_for(app)
        redis = Redis.from_url(config["REDIS_URL"])
        req = submit(client, headers, "access", 1)
        start_worker("dsar", config=config)  # store tasks only: the close job waits on dsar_bulk
        wait_for(lambda: redis.llen("rq:queue:dsar_bulk") == 1, timeout=120)
        assert client.get(f"/v1/requests/{req['id']}", headers=headers).json["status"] == "in_progress"
        rt = app.extensions["runtime"]
        outbox.reconcile(rt)  # its close job waits: nothing more is enqueued
        assert redis.llen("rq:queue:dsar_bulk") == 1
        redis.delete("rq:queue:dsar_bulk", f"rq:job:{close_job_id(req['id'])}")  # Redis loses it
        outbox.reconcile(rt)
        assert redis.llen("rq:queue:dsar_bulk") == 1
        start_worker(*procfile_queues(), config=config)
        done = wait_for(finished(client, headers, req["id"]), timeout=120, interval=0.5)
        assert done["status"] == "completed", done
        with app.extensions["db"].sessions() as session:
            assert session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "dsar.export_ready")) == 1


def test_in_process_a_large_export_closes_at_once(inline_app_with, key_for):
    """No Redis: the jobs run in the caller, whatever queue they name; a large export is assembled there."""
    app = inline_app_with('bulk_export_records = 10\nbulk_stores = ["uploads"]\n')
    client, headers = app.test_client(), key_for(app)
    done = submit(client, headers, "access", 3)
    assert done["status"] == "completed", done
    assert sum(n for t in done["tasks"] for n in t["counts"].values()) > 10


def test_a_worker_killed_while_it_assembles_an_export_then_the_reconciler_completes(estate, key_for, start_worker):
    """The worker running a close job is SIGKILLed mid-assembly: nothing of it is committed; the maintenance pass
    hands the closing to the bulk queue again and a new worker completes the request, with one export."""
    from dsar import outbox
    from tests.dsar.conftest import kill_with_horse

    config = estate("bulk_export_records = 1000\n")
    for app in _app(config):
        _weigh(app, "photo-archive", 1, rows=2 * HEAVY)
        client, headers = app.test_client(), key_for(app)
        redis = Redis.from_url(config["REDIS_URL"])
        worker = start_worker(*procfile_queues(), config=config)
        req = submit(client, headers, "access", 1)

        def assembling():
            job = Job.fetch(close_job_id(req["id"]), connection=redis) \
                if Job.exists(close_job_id(req["id"]), connection=redis) else None
            return job is not None and job.get_status() == "started"

        wait_for(assembling, timeout=120, interval=0.02)
        kill_with_horse(worker)
        assert client.get(f"/v1/requests/{req['id']}", headers=headers).json["status"] == "in_progress"
        start_worker(*procfile_queues(), config=config)
        rt = app.extensions["runtime"]

        def reconcile_then_check():
            outbox.reconcile(rt)  # what the scheduler's maintenance pass does every minute
            return finished(client, headers, req["id"])()

        done = wait_for(reconcile_then_check, timeout=120, interval=0.5)
        assert done["status"] == "completed", done
        with app.extensions["db"].sessions() as session:
            assert session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "dsar.export_ready")) == 1
        assert done["export_ready"]
