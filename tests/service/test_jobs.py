"""The job queue: in-process by default, RQ with a real worker process when REDIS_URL is set."""

from sqlalchemy import func, select

from service.audit import AuditEvent
from service.runtime import runtime
from tests.conftest import wait_for


def record_marker(resource_id: str) -> None:
    """A job that leaves evidence in the database of whichever runtime executes it."""
    from service import audit

    with runtime().db.session() as session:
        audit.record(session, app_id=None, actor="system", action="test.job_ran", resource_type="test",
                     resource_id=resource_id)


def count_markers(app, resource_id: str) -> int:
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "test.job_ran", AuditEvent.resource_id == resource_id))


def test_in_process_queue_runs_jobs_in_the_apps_runtime(app):
    app.extensions["queue"].enqueue(record_marker, "inline-1")
    assert count_markers(app, "inline-1") == 1


def test_rq_worker_process_runs_jobs(rq_app, start_worker):
    rq_app.extensions["queue"].enqueue(record_marker, "rq-1", queue="default")
    assert count_markers(rq_app, "rq-1") == 0
    start_worker("default")
    wait_for(lambda: count_markers(rq_app, "rq-1") == 1)


def record_pid(tag: str) -> None:
    """A job that records which process ran it."""
    import os

    record_marker(f"{tag}:{os.getpid()}")


def overrun(tag: str) -> None:
    """A job that outlives any short timeout: marks its start, sleeps, marks an end it should never reach."""
    import time

    record_marker(f"{tag}:start")
    time.sleep(60)
    record_marker(f"{tag}:end")


def test_the_procfile_worker_runs_jobs_in_its_own_process_without_forking(rq_app, start_worker):
    queue = rq_app.extensions["queue"]
    for n in range(3):
        queue.enqueue(record_pid, f"pid-{n}", queue="default")
    worker = start_worker("default")
    for n in range(3):
        wait_for(lambda n=n: count_markers(rq_app, f"pid-{n}:{worker.pid}") == 1)


def test_a_job_past_its_timeout_is_stopped_and_the_worker_goes_on(rq_app, start_worker):
    queue = rq_app.extensions["queue"]
    queue.enqueue(overrun, "slow", queue="default", timeout=2)
    queue.enqueue(record_marker, "after", queue="default")
    start_worker("default")
    # Within 30 s, not the 60 the job sleeps: the death penalty stopped it and the same worker took the next job.
    wait_for(lambda: count_markers(rq_app, "after") == 1, timeout=30)
    assert count_markers(rq_app, "slow:start") == 1 and count_markers(rq_app, "slow:end") == 0


def test_readyz_reports_redis(rq_app):
    r = rq_app.test_client().get("/readyz")
    assert r.status_code == 200 and r.json["checks"]["redis"] == "ok"


def test_readyz_names_an_unreachable_redis_and_stays_ready(base_config):
    from privacy import create_app

    app = create_app({**base_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "degraded" and r.json["down"] == ["redis"]
    assert r.json["checks"]["redis"].startswith("error")
    app.extensions["db"].dispose()
