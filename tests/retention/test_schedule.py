"""Scheduled runs: each policy's cron schedule, evaluated by the scheduler's tick against its last scheduled run;
and the worker and scheduler started exactly as the Procfile starts them, firing a run of a policy created after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from retention.models import RetentionPolicy, RetentionRun
from retention.runs import steps_of
from retention.schedule import claim_due, stranded
from service.db import utcnow
from tests.conftest import ROOT, wait_for

RUNS = "/v1/retention/runs"


def _created(app, key, when):
    with app.extensions["db"].session() as session:
        session.execute(update(RetentionPolicy).where(RetentionPolicy.key == key).values(created_at=when))


def test_a_policy_is_due_once_per_slot_of_its_schedule(ret_app, policy):
    policy("cloud-photos", "device_log", "P90D", schedule="0 3 * * *")
    policy("uploads", "photos", "P1Y", schedule="0 4 * * 1")  # Mondays at 04:00 UTC
    t0 = datetime(2026, 11, 24, 12, tzinfo=UTC)  # a Tuesday
    _created(ret_app, "cloud-photos.device_log", t0)
    _created(ret_app, "uploads.photos", t0)
    db = ret_app.extensions["db"]
    assert claim_due(db, t0 + timedelta(hours=14)) is None  # 02:00 the next day: nothing yet
    run_id = claim_due(db, datetime(2026, 11, 25, 3, 0, 5, tzinfo=UTC))
    assert run_id is not None and claim_due(db, datetime(2026, 11, 25, 3, 0, 30, tzinfo=UTC)) is None
    with db.sessions() as session:
        run = session.get(RetentionRun, run_id)
        assert (run.trigger, run.requested_by, run.state) == ("schedule", "system", "queued")
        assert [s.policy_key for s in steps_of(session, run_id)] == ["cloud-photos.device_log"]
    # Days without a tick give one run, not one per missed slot; the weekly policy joins on Monday.
    monday = datetime(2026, 11, 30, 4, 0, 1, tzinfo=UTC)
    later = claim_due(db, monday)
    with db.sessions() as session:
        assert sorted(s.policy_key for s in steps_of(session, later)) == ["cloud-photos.device_log",
                                                                           "uploads.photos"]
    assert claim_due(db, monday + timedelta(minutes=1)) is None


def test_disabled_policies_are_not_scheduled_and_stranded_runs_are_found(ret_app, policy, headers):
    policy("cloud-photos", "device_log", "P90D", schedule="* * * * *")
    client = ret_app.test_client()
    client.post("/v1/retention/policies/cloud-photos.device_log/disable", headers=headers)
    _created(ret_app, "cloud-photos.device_log", utcnow() - timedelta(days=1))
    assert claim_due(ret_app.extensions["db"]) is None
    with ret_app.extensions["db"].session() as session:
        session.add(RetentionRun(id="00000000-0000-0000-0000-000000000001", dry_run=False, trigger="api",
                                 requested_by="test", state="running", as_of=utcnow(), attempts=1,
                                 lease_token="x", lease_expires_at=utcnow() - timedelta(seconds=5)))
    assert stranded(ret_app.extensions["db"]) == ["00000000-0000-0000-0000-000000000001"]


def _procfile(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} process in the Procfile")


def _kill(proc: subprocess.Popen) -> None:
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    pids = children.read_text().split() if children.exists() else []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in pids:
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def test_the_procfiles_scheduler_fires_a_policys_cron_schedule(ret_rq_app, worker_config, estate_env, headers,
                                                               policy):
    env = {**os.environ, **worker_config, **estate_env, "RETENTION_TICK_SECONDS": "1", "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    procs = [subprocess.Popen(["bash", "-c", _procfile(name)], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name in ("worker", "scheduler")]
    try:
        # Created after the scheduler started: the tick reads policies every time.
        policy("sessions", "sessions", "P30D", schedule="* * * * * */2")  # every two seconds (seconds last)
        client = ret_rq_app.test_client()

        def scheduled_run():
            found = client.get(f"{RUNS}?trigger=schedule&state=succeeded", headers=headers).json
            return found[0] if found else None

        run = wait_for(scheduled_run, timeout=30)
        assert run["requested_by"] == "system" and [s["policy"] for s in run["steps"]] == ["sessions.sessions"]
        shown = client.get("/v1/retention/policies/sessions.sessions", headers=headers).json
        assert shown["last_run"]["run"] is not None
    finally:
        for proc in procs:
            _kill(proc)
