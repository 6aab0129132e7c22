"""The scheduled drift check on a real rq worker: it marks the drifted assessment, and a second run marks nothing."""

from __future__ import annotations

from redis import Redis
from rq.job import Job
from sqlalchemy import func, select

from governance import jobs
from governance.models import Assessment
from service.audit import AuditEvent
from tests.conftest import wait_for
from tests.governance.conftest import Api
from tests.governance.test_assessments import approved, setup_app


def test_the_worker_marks_drift_once(app, api: Api, demo, rq_app, start_worker, redis_url):
    setup_app(api, demo)
    a = approved(api)
    api.post("/v1/retention/policies/cloud-photos.device_log/disable", status=200)
    db = app.extensions["db"]

    def row() -> Assessment:
        with db.session() as session:  # the row itself: an API read would check drift on its own
            return session.get(Assessment, a["id"])

    def drifted_events() -> int:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "governance.assessment_drifted"))

    assert row().state == "approved"
    conn = Redis.from_url(redis_url)

    def finished(job_id: str) -> bool:
        return Job.fetch(job_id, connection=conn).get_status() == "finished"

    queue = rq_app.extensions["queue"]
    queue.enqueue(jobs.check_drift, queue="default", job_id="drift-1")
    start_worker("default")
    wait_for(lambda: finished("drift-1"), timeout=60)
    assert row().state == "review_needed"
    assert [(d["kind"], d["subject"]) for d in row().drift] == [("retention_disabled", "cloud-photos/device_log")]
    queue.enqueue(jobs.check_drift, queue="default", job_id="drift-2")
    wait_for(lambda: finished("drift-2"), timeout=60)
    assert Job.fetch("drift-2", connection=conn).return_value() == []
    assert drifted_events() == 1
    conn.close()
