"""The database restarts (or stays down longer than a task's lease) while a real rq worker runs a rights request's
tasks: the request still completes, through the job's own retries or the reconciler, with each store's work done
once. The PostgreSQL server is the test's own (throwaway_postgres), never the shared one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from dsar.models import DsarTask
from service.cli import alembic_config
from tests.conftest import wait_for
from tests.dsar.conftest import _app, write_config
from tests.dsar.plugins import SlowStore

pytestmark = pytest.mark.postgres_only  # the server restarted is PostgreSQL

ROWS, SECONDS = 8, 0.4  # the slow store erases one row every SECONDS: the task runs for about 3 s
FINAL = ("completed", "partially_completed", "failed")


def _slow_store(tmp_path: Path) -> tuple[SlowStore, str]:
    store = SlowStore("archive", {"path": str(tmp_path / "archive.sqlite3")})
    store.seed([("1", "misc", f"f{i}", "x") for i in range(ROWS)])
    return store, (f'[[stores]]\nname = "archive"\nplugin = "tests.dsar.plugins:SlowStore"\n'
                   f'path = "{tmp_path / "archive.sqlite3"}"\nseconds = {SECONDS}\n')


@pytest.mark.parametrize("outage", ["restart", "down past the lease"])
def test_an_erasure_in_flight_completes_after_the_database_is_back(outage, throwaway_postgres, base_config,
                                                                   redis_url, tmp_path, key_for, start_worker):
    command.upgrade(alembic_config(throwaway_postgres.url), "head")
    store, toml = _slow_store(tmp_path)
    config = {**base_config, "DATABASE_URL": throwaway_postgres.url, "REDIS_URL": redis_url,
              "PRIVACY_CONFIG": write_config(tmp_path, toml, estate="estate.toml")}
    for app in _app(config):
        client, h = app.test_client(), key_for(app, "dsar:submit,dsar:manage")
        r = client.post("/v1/requests", headers=h, json={"type": "erasure", "subject": {"user_id": "1"},
                                                         "jurisdiction": "GDPR", "verified": True})
        assert r.status_code == 202, r.json
        request_id = r.json["id"]
        start_worker("dsar", config=config)

        def slow_task_running() -> bool:
            with app.extensions["db"].sessions() as session:
                state = session.scalar(select(DsarTask.state).where(DsarTask.request_id == request_id,
                                                                    DsarTask.store == "archive"))
            return state == "running" and len(store.rows("1")) < ROWS  # claimed, and erasing

        wait_for(slow_task_running, timeout=30, interval=0.05)
        if outage == "restart":
            throwaway_postgres.restart("fast")
        else:
            # Longer than the lease (2 s) and than the store's remaining work: the job cannot record its result,
            # nor can its RQ retry claim the task; the lapsed lease hands it to the reconciler.
            throwaway_postgres.stop("fast")
            time.sleep(5)
            throwaway_postgres.start()
        runner = app.test_cli_runner()

        def finished() -> dict | None:
            assert runner.invoke(args=["dsar", "maintain"]).exit_code == 0  # the scheduler's pass
            body = client.get(f"/v1/requests/{request_id}", headers=h).json
            return body if body["status"] in FINAL else None

        done = wait_for(finished, timeout=90, interval=0.5)
        assert done["status"] == "completed", done
        tasks = {t["store"]: t for t in done["tasks"]}
        assert {t["state"] for t in tasks.values()} == {"done"}, tasks
        assert store.rows("1") == [] and done["certificate"]
        if outage == "restart":
            assert tasks["archive"]["attempts"] == 1, tasks["archive"]  # the restart cost the job nothing
            assert tasks["archive"]["counts"] == {"misc": ROWS}
        else:
            assert tasks["archive"]["attempts"] == 2, tasks["archive"]  # its second run found nothing left
