"""Redis down when a run is requested: the saved run is answered 202 (never 500), a retry with the same
Idempotency-Key returns the first answer, and once Redis is back the scheduler's tick hands the run left queued to
a real worker. Redis here is a server of the test's own (throwaway_redis), never the shared one."""

from __future__ import annotations

from sqlalchemy import func, select

from privacy import create_app
from retention.models import RetentionRun
from tests.conftest import _truncate
from tests.retention.conftest import wait_run

RUNS = "/v1/retention/runs"


def _runs(app):
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(RetentionRun))


def test_run_requested_while_redis_is_down_is_run_once_it_is_back(throwaway_redis, base_config, estate_env,
                                                                  make_key, start_worker):
    config = {**base_config, **estate_env, "REDIS_URL": throwaway_redis.url}
    app = create_app(config)
    app.config["TESTING"] = True
    try:
        client, h = app.test_client(), make_key("ops", "platform:retention")
        r = client.post("/v1/retention/policies", json={"store": "cloud-photos", "category": "device_log",
                                                       "retain_for": "P90D", "basis": "security logs: 90 days"},
                        headers=h)
        assert r.status_code == 201, r.json
        throwaway_redis.stop()
        body = {"policy": "cloud-photos.device_log", "dry_run": True}
        first = client.post(RUNS, json=body, headers={**h, "Idempotency-Key": "nightly-2026-11-28"})
        assert first.status_code == 202, first.json
        assert first.json["state"] == "queued"
        again = client.post(RUNS, json=body, headers={**h, "Idempotency-Key": "nightly-2026-11-28"})
        assert (again.status_code, again.json) == (202, first.json)
        assert _runs(app) == 1
        other = client.post(RUNS, json={**body, "dry_run": False}, headers={**h, "Idempotency-Key":
                                                                           "nightly-2026-11-28"})
        assert other.status_code == 422 and "Idempotency-Key" in other.json["message"]
        down = app.test_cli_runner().invoke(args=["retention", "tick"])
        assert down.exit_code == 1 and "Redis is unreachable" in down.output, down.output
        assert "Traceback" not in down.output

        throwaway_redis.start()  # back, and empty: the run's job was never there
        start_worker("retention", config=config)
        tick = app.test_cli_runner().invoke(args=["retention", "tick"])
        assert tick.exit_code == 0 and first.json["id"] in tick.output, tick.output
        report = wait_run(client, h, first.json["id"], timeout=60)
        assert report["state"] == "succeeded" and report["attempts"] == 1, report
        # a second tick finds nothing left queued, and a retried POST still answers the first result
        assert first.json["id"] not in app.test_cli_runner().invoke(args=["retention", "tick"]).output
        late = client.post(RUNS, json=body, headers={**h, "Idempotency-Key": "nightly-2026-11-28"})
        assert (late.status_code, late.json) == (202, first.json)
        assert _runs(app) == 1
    finally:
        _truncate(app)
        app.extensions["stores"].close()
        app.extensions["db"].dispose()


def test_a_queued_run_whose_job_waits_in_redis_is_left_alone(ret_rq_app, policy, headers, redis_url):
    from redis import Redis

    client = ret_rq_app.test_client()
    policy("cloud-photos", "device_log", "P90D")
    run = client.post(RUNS, json={"policy": "cloud-photos.device_log", "dry_run": True}, headers=headers).json
    conn = Redis.from_url(redis_url)
    assert conn.llen("rq:queue:retention") == 1
    tick = ret_rq_app.test_cli_runner().invoke(args=["retention", "tick"])
    assert tick.exit_code == 0 and run["id"] not in tick.output  # its job waits: no duplicate
    assert conn.llen("rq:queue:retention") == 1
    conn.flushdb()  # Redis loses the job
    tick = ret_rq_app.test_cli_runner().invoke(args=["retention", "tick"])
    assert run["id"] in tick.output and conn.llen("rq:queue:retention") == 1
