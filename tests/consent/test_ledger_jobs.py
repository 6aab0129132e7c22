"""Ledger verification as an operation: the scheduler's daily job on a real worker, its record, re-runs, runs that
died, and the last result in /readyz (shown, never a reason to be unready)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from consent import jobs
from consent.models import LedgerVerification
from service.db import utcnow
from service.runtime import use_runtime
from tests.conftest import ROOT, wait_for
from tests.consent.tamper import execute, rows


def verifications(app) -> list[LedgerVerification]:
    with app.extensions["db"].sessions() as session:
        return list(session.scalars(select(LedgerVerification).order_by(LedgerVerification.id)))


def test_the_scheduler_runs_a_full_verification_on_a_worker(rq_app, worker_config, start_worker, long_ledger):
    worker = start_worker("default")
    env = {**os.environ, **worker_config, "PYTHONPATH": str(ROOT)}
    rq = str(Path(sys.executable).parent / "rq")
    # An interval job fires when the scheduler starts, then every LEDGER_VERIFY_SECONDS (default: a day).
    scheduler = subprocess.Popen([rq, "cron", "--url", worker_config["REDIS_URL"], "privacy.cron"], cwd=ROOT,
                                 env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        done = wait_for(lambda: [v for v in verifications(rq_app) if v.status != "running"], timeout=60)
    finally:
        # The worker too, before the fixtures empty the tables: the scheduler's other jobs (the consent counts'
        # fold, the mail sweep) may still hold locks that TRUNCATE would deadlock with.
        for proc in (scheduler, worker):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    (row,) = done
    assert (row.trigger, row.mode, row.status, row.breaks) == ("cron", "full", "intact", 0)
    assert row.events_checked == len(rows(rq_app)) and row.finished_at >= row.started_at
    assert rq_app.extensions["keys"].signer.verify(row.checkpoint)["verification"] == row.id


def test_the_job_is_safe_to_run_again_and_skips_while_another_run_is_in_progress(app, long_ledger):
    with use_runtime(app.extensions["runtime"]):
        first = jobs.verify_ledger()
        second = jobs.verify_ledger()  # a re-delivered or duplicate job: one more observation, same ledger
        assert first is not None and second is not None and second > first
        with app.extensions["db"].session() as session:
            session.add(LedgerVerification(status="running", mode="full", trigger="cron", started_at=utcnow()))
        assert jobs.verify_ledger() is None  # another run is in progress: this one records nothing
    found = verifications(app)
    assert [v.status for v in found] == ["intact", "intact", "running"]
    assert found[0].events_checked == found[1].events_checked == len(rows(app))


def test_a_run_that_died_is_recorded_as_abandoned_by_the_next(app, long_ledger):
    with app.extensions["db"].session() as session:
        session.add(LedgerVerification(status="running", mode="full", trigger="cron",
                                       started_at=utcnow() - timedelta(seconds=jobs.timeout_seconds() + 60)))
    with use_runtime(app.extensions["runtime"]):
        assert jobs.verify_ledger() is not None
    dead, fresh = verifications(app)
    assert (dead.status, fresh.status) == ("abandoned", "intact") and dead.finished_at is not None


def test_the_cli_records_its_run(app, long_ledger):
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    (row,) = verifications(app)
    assert (row.trigger, row.status) == ("cli", "intact")
    assert f"verification {row.id} (full)" in result.output


def test_readyz_shows_the_last_verification_without_changing_readiness(app, client, long_ledger):
    assert client.get("/readyz").json["ledger"] == {"last_verification": None}
    target = rows(app)[10]
    execute(app, "UPDATE consent_events SET channel = 'forged' WHERE id = :id", id=target.id)
    assert app.test_cli_runner().invoke(args=["ledger", "verify"]).exit_code == 1
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "ready"
    last = r.json["ledger"]["last_verification"]
    (row,) = verifications(app)
    assert (last["id"], last["status"], last["mode"]) == (row.id, "broken", "full")
    assert last["finished_at"] == row.finished_at.isoformat()
    with app.extensions["db"].session() as session:  # a run in progress shows as such
        session.execute(update(LedgerVerification).values(status="running", finished_at=None))
    assert client.get("/readyz").json["ledger"]["last_verification"]["status"] == "running"
