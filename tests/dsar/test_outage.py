"""Redis down when a request is submitted: the saved request is answered 202 (never 500), a retry with the same
Idempotency-Key returns the first answer and creates nothing, and once Redis is back a real worker and the
maintenance pass finish it. Redis here is a server of the test's own (throwaway_redis), never the shared one."""

import time

from sqlalchemy import func, select

from dsar.models import DsarRequest
from tests.conftest import wait_for
from tests.dsar.conftest import _app, write_config

BODY = {"type": "access", "subject": {"user_id": "1"}, "jurisdiction": "GDPR", "verified": True}
FINAL = ("completed", "partially_completed", "failed")


def _requests(app):
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(DsarRequest))


def test_submitted_while_redis_is_down_then_finished_once_it_is_back(throwaway_redis, base_config, tmp_path,
                                                                     key_for, start_worker):
    config = {**base_config, "REDIS_URL": throwaway_redis.url,
              "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")}
    for app in _app(config):
        client, h = app.test_client(), key_for(app, "dsar:submit,dsar:manage")
        throwaway_redis.stop()
        started = time.monotonic()
        first = client.post("/v1/requests", json=BODY, headers={**h, "Idempotency-Key": "retry-me-1"})
        assert first.status_code == 202, first.json
        assert time.monotonic() - started < 5
        assert first.json["status"] == "in_progress" and {t["state"] for t in first.json["tasks"]} == {"pending"}
        # the client did not see the answer and retries: the same answer, no second request
        again = client.post("/v1/requests", json=BODY, headers={**h, "Idempotency-Key": "retry-me-1"})
        assert (again.status_code, again.json) == (202, first.json)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _requests(app) == 1
        # the same key with another body is refused, naming the header
        other = client.post("/v1/requests", json={**BODY, "type": "portability"},
                            headers={**h, "Idempotency-Key": "retry-me-1"})
        assert other.status_code == 422 and "Idempotency-Key" in other.json["message"]
        assert _requests(app) == 1

        throwaway_redis.start()  # back, and empty: the jobs were never there
        start_worker("dsar", config=config)
        runner = app.test_cli_runner()

        def finished():
            assert runner.invoke(args=["dsar", "maintain"]).exit_code == 0  # the scheduler's pass
            body = client.get(f"/v1/requests/{first.json['id']}", headers=h).json
            return body if body["status"] in FINAL else None

        done = wait_for(finished, timeout=60, interval=0.5)
        assert done["status"] == "completed", done
        assert all(t["attempts"] == 1 for t in done["tasks"])
        # a retry even now returns the first answer, and still creates nothing
        late = client.post("/v1/requests", json=BODY, headers={**h, "Idempotency-Key": "retry-me-1"})
        assert (late.status_code, late.json) == (202, first.json)
        assert _requests(app) == 1


def test_verification_while_redis_is_down_is_not_an_error(throwaway_redis, base_config, tmp_path, key_for):
    from tests.dsar.test_requests import code_of

    config = {**base_config, "REDIS_URL": throwaway_redis.url,
              "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")}
    for app in _app(config):
        client, h = app.test_client(), key_for(app, "dsar:submit")
        rid = client.post("/v1/requests", json={"type": "access", "subject": {"user_id": "1"},
                                                "jurisdiction": "GDPR", "contact_email": "ana@example.com"},
                          headers=h).json["id"]
        throwaway_redis.stop()
        r = client.post(f"/v1/requests/{rid}/verify", json={"code": code_of(app, rid)}, headers=h)
        assert r.status_code == 200 and r.json["status"] == "in_progress", r.json



def _registered(url: str) -> bool:
    """Whether an rq worker and the cron scheduler have both announced themselves on the Redis at `url`."""
    from redis import Redis
    from rq import Worker
    from rq.cron import CronScheduler

    conn = Redis.from_url(url)
    try:
        return bool(Worker.all(connection=conn)) and bool(CronScheduler.all(conn))
    finally:
        conn.close()


def test_the_procfiles_processes_finish_requests_submitted_while_redis_was_down(throwaway_redis, base_config,
                                                                                tmp_path, key_for):
    """No one runs `dsar maintain` by hand here: the Procfile's worker and scheduler live through the outage, and
    the scheduler's maintenance pass dispatches the outbox once Redis is back (`rq cron` alone exited at the
    outage's first tick: privacy.scheduler starts it again)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT
    from tests.dsar.conftest import kill_with_horse
    from tests.service.conftest import procfile_command

    config = {**base_config, "REDIS_URL": throwaway_redis.url, "DSAR_MAINTENANCE_SECONDS": "1",
              "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")}
    env = {**os.environ, **config, "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    procs = {name: subprocess.Popen(["bash", "-c", "exec " + procfile_command(name)], cwd=ROOT, env=env,
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name in ("worker", "scheduler")}
    try:
        for app in _app(config):
            client, h = app.test_client(), key_for(app, "dsar:submit,dsar:manage")
            wait_for(lambda: _registered(throwaway_redis.url), timeout=60, interval=0.2)
            throwaway_redis.stop()
            r = client.post("/v1/requests", json=BODY, headers=h)
            assert r.status_code == 202 and {t["state"] for t in r.json["tasks"]} == {"pending"}, r.json
            time.sleep(4)  # the scheduler ticks every second: it meets the outage several times
            assert {name: proc.poll() for name, proc in procs.items()} == {"worker": None, "scheduler": None}
            throwaway_redis.start()  # back, and empty
            done = wait_for(lambda: (body := client.get(f"/v1/requests/{r.json['id']}", headers=h).json)["status"]
                            in FINAL and body, timeout=60, interval=0.5)
            assert done["status"] == "completed", done
            assert all(t["attempts"] == 1 for t in done["tasks"])
    finally:
        for proc in procs.values():
            kill_with_horse(proc)
