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
