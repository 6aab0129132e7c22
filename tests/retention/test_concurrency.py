"""Concurrent triggers of one policy produce a single run; two runs never apply one policy at the same time, and
a dead holder's lock is taken over once its lease expires."""

from __future__ import annotations

import threading
from datetime import timedelta

from redis import Redis
from rq import Queue
from sqlalchemy import func, select, update

from retention import execution, leases, runs
from retention.leases import LeaseLost
from retention.models import RetentionRun
from retention.policies import Actor
from service.db import utcnow
from tests.retention.conftest import RETENTION_REDIS_URL

RUNS = "/v1/retention/runs"


def test_concurrent_triggers_of_one_policy_produce_a_single_run(ret_rq_app, policy, headers):
    policy("cloud-photos", "device_log", "P90D")
    barrier, results = threading.Barrier(12), []

    def trigger():
        client = ret_rq_app.test_client()
        barrier.wait()
        r = client.post(RUNS, json={"policy": "cloud-photos.device_log"}, headers=headers)
        results.append((r.status_code, r.json["id"]))

    threads = [threading.Thread(target=trigger) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 12 and {code for code, _ in results} == {202}
    assert len({run_id for _, run_id in results}) == 1
    with ret_rq_app.extensions["db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(RetentionRun)) == 1
    assert Queue("retention", connection=Redis.from_url(RETENTION_REDIS_URL)).count == 1
    # A dry run of the same policy is another question, so another run.
    r = ret_rq_app.test_client().post(RUNS, json={"policy": "cloud-photos.device_log", "dry_run": True},
                                      headers=headers)
    assert r.json["id"] != results[0][1]


def test_two_runs_never_apply_one_policy_at_once(ret_app, seeded, policy):
    policy("cloud-photos", "device_log", "P90D")
    policy("uploads", "photos", "P365D")
    rt = ret_app.extensions["runtime"]
    first, _ = runs.request_run(rt.db, Actor("test"), policy_key="cloud-photos.device_log")
    second, _ = runs.request_run(rt.db, Actor("test"))  # every enabled policy
    holder = leases.claim(rt.db, first, 60)
    with rt.db.sessions() as session:
        policy_id = runs.steps_of(session, first)[0].policy_id
    assert leases.acquire(rt.db, holder, policy_id) is None

    assert execution.execute(rt, second) == "succeeded"
    with rt.db.sessions() as session:
        steps = {s.category: s for s in runs.steps_of(session, second)}
    assert steps["device_log"].state == "skipped" and steps["device_log"].skipped == {"reason": "locked",
                                                                                       "run": first}
    assert steps["photos"].state == "done" and steps["photos"].destroyed > 0

    # The holder dies: once its lease expires, another run takes the lock and the old holder cannot go on.
    with rt.db.session() as session:
        session.execute(update(RetentionRun).where(RetentionRun.id == first)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    third, _ = runs.request_run(rt.db, Actor("test"))
    taker = leases.claim(rt.db, third, 60)
    assert leases.acquire(rt.db, taker, policy_id) is None
    holder.policy_id = policy_id
    with rt.db.session() as session:
        try:
            holder.renew(session)
            raise AssertionError("the dead holder renewed a lease it lost")
        except LeaseLost:
            pass


def test_a_second_delivery_of_a_running_job_does_nothing(ret_app, policy):
    policy("cloud-photos", "device_log", "P90D")
    rt = ret_app.extensions["runtime"]
    run_id, _ = runs.request_run(rt.db, Actor("test"), policy_key="cloud-photos.device_log")
    assert leases.claim(rt.db, run_id, 60) is not None
    assert execution.execute(rt, run_id) is None  # a live attempt holds it
    with rt.db.sessions() as session:
        assert runs.get_run(session, run_id).state == "running"
