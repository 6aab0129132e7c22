"""Resumable runs: a worker SIGKILLed mid-run, and crashes in each window of the journal protocol, end with every
old record destroyed exactly once and counted exactly once."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update

from privacy import create_app
from retention import execution, leases, runs
from retention.config import options
from retention.digest import digest_key, key_sum, to_hex
from retention.journal import Journal
from retention.models import RetentionBatch, RetentionRun, RetentionStep
from retention.policies import Actor
from service.db import utcnow
from service.stores import demo
from tests.conftest import wait_for
from tests.retention import estate
from tests.retention.conftest import wait_run

RUNS = "/v1/retention/runs"


@pytest.fixture(scope="module")
def estate_app(base_config, estate_env):
    """This module's app destroys seven rows a batch, so each simulated crash lands inside a run of many batches."""
    app = create_app({**base_config, **estate_env, "RETENTION_BATCH_SIZE": "7"})
    app.config["TESTING"] = True
    assert options(app.extensions["runtime"].settings).batch_size == 7
    yield app
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


def _add_old_logs(app, count: int) -> None:
    """Many expired device logs, so a run takes long enough to be killed in the middle."""
    engine = app.extensions["stores"].get(demo.SQL_STORE).engine
    logs = demo.metadata.tables["device_logs"]
    start = (utcnow() - timedelta(days=400)).replace(tzinfo=None)
    with engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.max(logs.c.id))).scalar() + 1
        conn.execute(logs.insert(), [{"id": first + i, "user_id": 1 + i % 40, "device_id": "dev", "event": "sync",
                                      "ip_address": "192.0.2.1", "logged_at": start - timedelta(minutes=i)}
                                     for i in range(count)])


def kill_worker(proc) -> None:
    """SIGKILL the worker and its work horse (RQ forks the horse into a process group of its own)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _committed(app, run_id: str) -> int:
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(sa.func.count()).select_from(RetentionBatch).join(
            RetentionStep, RetentionStep.id == RetentionBatch.step_id).where(RetentionStep.run_id == run_id)) or 0


def test_a_worker_killed_mid_run_is_resumed_to_the_exact_total(ret_rq_app, seeded, policy, headers, worker):
    client = ret_rq_app.test_client()
    _add_old_logs(ret_rq_app, 6000)
    policy("cloud-photos", "device_log", "P90D")
    before = estate.sql_rows(ret_rq_app, "device_logs", "logged_at")
    env = {"RETENTION_BATCH_SIZE": "20", "RETENTION_LEASE_SECONDS": "2"}
    run_id = client.post(RUNS, json={"policy": "cloud-photos.device_log"}, headers=headers).json["id"]
    first = worker(**env)
    wait_for(lambda: _committed(ret_rq_app, run_id) >= 5, timeout=20, interval=0.01)
    kill_worker(first)

    interrupted = client.get(f"{RUNS}/{run_id}", headers=headers).json
    assert interrupted["state"] == "running" and 0 < interrupted["steps"][0]["count"] < 6000
    assert client.post(f"{RUNS}/{run_id}/retry", headers=headers).status_code == 409  # its lease still lives
    wait_for(lambda: client.post(f"{RUNS}/{run_id}/retry", headers=headers).status_code == 202, timeout=10)
    worker(**env)
    report = wait_run(client, headers, run_id)

    after = estate.sql_rows(ret_rq_app, "device_logs", "logged_at")
    old, new = estate.split(before, _cutoff(report))
    assert report["state"] == "succeeded" and report["attempts"] == 2
    assert set(after) == new
    step = report["steps"][0]
    assert step["count"] == len(old) == sum(step["batches"]) and step["in_flight"] == 0
    secret = digest_key(ret_rq_app.extensions["keys"])
    assert step["key_digest"] == to_hex(key_sum(secret, "cloud-photos", "device_log",
                                                (f"device_logs/{k}" for k in old)))


def _cutoff(report):
    from datetime import datetime

    return datetime.fromisoformat(report["steps"][0]["cutoff"].replace("Z", "+00:00"))


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


def _start(app, policy_key: str, committed=None):
    rt = app.extensions["runtime"]
    run_id, _ = runs.request_run(rt.db, Actor("test"), policy_key=policy_key)
    lease = leases.claim(rt.db, run_id, options(rt.settings).lease_seconds)
    with rt.db.sessions() as session:
        step = session.scalar(select(RetentionStep).where(RetentionStep.run_id == run_id))
    lease.policy_id = step.policy_id
    assert leases.acquire(rt.db, lease, step.policy_id) is None
    journal = Journal(rt.db, lease, step.id, store=step.store, category=step.category,
                      secret=digest_key(rt.keys), dry_run=False, committed=committed)
    return rt, run_id, step, journal


def _die(app, run_id: str) -> None:
    """The dead attempt's lease runs out."""
    with app.extensions["db"].session() as session:
        session.execute(update(RetentionRun).where(RetentionRun.id == run_id)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_crash_after_the_journal_commit_but_before_the_store_commit(ret_app, seeded, policy):
    policy("cloud-photos", "device_log", "P90D")
    before = estate.sql_rows(ret_app, "device_logs", "logged_at")
    rt, run_id, step, journal = _start(ret_app, "cloud-photos.device_log")
    store = ret_app.extensions["stores"].get("cloud-photos")

    def prepare_then_die(keys):
        journal.prepare(keys)
        raise Crash  # the journal holds a prepared batch; the store's transaction rolls back

    try:
        for _ in store.expire("device_log", step.cutoff, batch_size=7, on_batch=prepare_then_die):
            pass
    except Crash:
        pass
    assert estate.sql_rows(ret_app, "device_logs", "logged_at") == before
    _die(ret_app, run_id)
    assert execution.execute(rt, run_id) == "succeeded"
    _assert_exact(ret_app, run_id, before, step.cutoff)


@pytest.mark.parametrize("protocol", ["on_batch", pytest.param("journal", marks=pytest.mark.postgres_only)])
def test_crash_after_the_store_commit_but_before_the_count_is_confirmed(ret_app, seeded, policy, protocol):
    policy("cloud-photos", "device_log", "P90D")
    before = estate.sql_rows(ret_app, "device_logs", "logged_at")
    store = ret_app.extensions["stores"].get("cloud-photos")
    journalled = protocol == "journal"
    rt, run_id, step, journal = _start(ret_app, "cloud-photos.device_log",
                                       committed=store.batch_committed if journalled else None)
    hook = {"journal": journal} if journalled else {"on_batch": journal.prepare}
    batches = store.expire("device_log", step.cutoff, batch_size=7, **hook)
    assert next(batches) == 7  # committed by the store; the process dies before recording it
    batches.close()
    assert len(estate.sql_rows(ret_app, "device_logs", "logged_at")) == len(before) - 7
    _die(ret_app, run_id)
    assert execution.execute(rt, run_id) == "succeeded"
    _assert_exact(ret_app, run_id, before, step.cutoff)


# The journalled protocol (PostgreSQL stores): the journal keeps a batch's digest and the store's transaction id,
# and the attempt that settles the step asks the store whether that transaction committed.

class _Journalled:
    """A BatchJournal in front of the real one, to stop the process at a chosen point."""

    def __init__(self, journal, *, on_begin=None, on_seal=None):
        self.journal, self.on_begin, self.on_seal = journal, on_begin, on_seal

    def begin(self, keys, token):
        if self.on_begin:
            self.on_begin(list(keys))
        self.journal.begin(keys, token)

    def seal(self):
        self.journal.seal()
        if self.on_seal:
            self.on_seal()


def _journalled(ret_app, policy):
    policy("cloud-photos", "device_log", "P90D")
    before = estate.sql_rows(ret_app, "device_logs", "logged_at")
    store = ret_app.extensions["stores"].get("cloud-photos")
    return (before, store, *_start(ret_app, "cloud-photos.device_log", committed=store.batch_committed))


@pytest.mark.postgres_only
def test_journalled_crash_after_the_journal_commit_but_before_the_store_commit(ret_app, seeded, policy):
    before, store, rt, run_id, step, journal = _journalled(ret_app, policy)

    def die():
        raise Crash  # the journal's row is durable, with the transaction's id; the store rolls back

    with pytest.raises(Crash):
        for _ in store.expire("device_log", step.cutoff, batch_size=7, journal=_Journalled(journal, on_seal=die)):
            pass
    assert estate.sql_rows(ret_app, "device_logs", "logged_at") == before
    with ret_app.extensions["db"].sessions() as session:
        assert session.scalar(select(RetentionBatch.state).where(RetentionBatch.step_id == step.id)) == "prepared"
    _die(ret_app, run_id)
    assert execution.execute(rt, run_id) == "succeeded"
    _assert_exact(ret_app, run_id, before, step.cutoff)


@pytest.mark.postgres_only
def test_journalled_batch_chosen_again_when_another_writer_changes_its_rows(ret_app, seeded, policy):
    """A row refreshed by another writer between the choice and the delete survives; the batch is chosen again
    and the aborted choice is not counted."""
    before, store, _, _, step, journal = _journalled(ret_app, policy)
    engine, logs = store.engine, demo.metadata.tables["device_logs"]
    refreshed: list[int] = []

    def refresh_one(keys):
        if not refreshed:
            refreshed.append(int(keys[0].split("/")[1]))
            with engine.begin() as conn:
                conn.execute(logs.update().where(logs.c.id == refreshed[0])
                             .values(logged_at=utcnow().replace(tzinfo=None)))

    with journal:
        counts = []
        for done in store.expire("device_log", step.cutoff, batch_size=7,
                                 journal=_Journalled(journal, on_begin=refresh_one)):
            journal.record(done)  # as the run does, each batch as it commits
            counts.append(done)
        total, key_digest = journal.finish()
    old, _ = estate.split(before, step.cutoff)
    destroyed = old - set(refreshed)
    assert refreshed and sum(counts) == total == len(destroyed)
    assert set(estate.sql_rows(ret_app, "device_logs", "logged_at")) == set(before) - destroyed
    with ret_app.extensions["db"].sessions() as session:
        states = set(session.scalars(select(RetentionBatch.state).where(RetentionBatch.step_id == step.id)))
    assert states == {"committed"}  # the aborted choice's row is gone
    secret = digest_key(ret_app.extensions["keys"])
    assert key_digest == to_hex(key_sum(secret, "cloud-photos", "device_log",
                                        (f"device_logs/{k}" for k in destroyed)))


def _assert_exact(app, run_id, before, cutoff):
    after = estate.sql_rows(app, "device_logs", "logged_at")
    old, new = estate.split(before, cutoff)
    assert set(after) == new
    with app.extensions["db"].sessions() as session:
        report = runs.report(session, runs.get_run(session, run_id))
    step = report["steps"][0]
    assert step["count"] == len(old) and step["in_flight"] == 0 and report["attempts"] == 2
    secret = digest_key(app.extensions["keys"])
    assert step["key_digest"] == to_hex(key_sum(secret, "cloud-photos", "device_log",
                                                (f"device_logs/{k}" for k in old)))


def test_a_failed_step_fails_the_run_and_a_retry_completes_it(app, ret_app, seeded, policy, headers):
    """`app` has no sessions store (no PRIVACY_CONFIG): its run fails that step and still does the others."""
    policy("cloud-photos", "device_log", "P90D")
    policy("sessions", "sessions", "P30D")
    before = estate.sessions(ret_app)
    run_id = app.test_client().post(RUNS, json={}, headers=headers).json["id"]
    failed = app.test_client().get(f"{RUNS}/{run_id}", headers=headers).json
    steps = {s["category"]: s for s in failed["steps"]}
    assert failed["state"] == "failed" and "no store named 'sessions'" in failed["error"]
    assert steps["sessions"]["state"] == "failed" and steps["device_log"]["state"] == "done"
    assert failed["certificate"] is True  # what was destroyed is certified, failure included
    assert estate.sessions(ret_app) == before

    client = ret_app.test_client()
    retried = client.post(f"{RUNS}/{run_id}/retry", headers=headers)
    assert retried.status_code == 202
    report = client.get(f"{RUNS}/{run_id}", headers=headers).json
    steps = {s["category"]: s for s in report["steps"]}
    old, new = estate.split(before, _cutoff({"steps": [steps["sessions"]]}))
    assert report["state"] == "succeeded" and steps["sessions"]["count"] == len(old)
    assert set(estate.sessions(ret_app)) == new
    assert client.post(f"{RUNS}/{run_id}/retry", headers=headers).status_code == 409  # succeeded: nothing to retry
