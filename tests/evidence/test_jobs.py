"""The evidence pack as an API job: a real rq worker writes it, the row in the database is the job's truth, and a
job lost from Redis is dispatched again by the reconciler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from redis import Redis

from governance import evidence_jobs
from service.runtime import use_runtime
from tests.conftest import wait_for

BODY = {"from": "2020-01-01", "to": "2099-12-31"}


def _done(client: Any, headers: dict[str, str], export_id: str) -> Callable[[], Any]:
    def check() -> Any:
        body = client.get(f"/v1/governance/evidence/{export_id}", headers=headers).json
        assert body["state"] != "failed", body
        return body if body["state"] == "done" else None
    return check


def _verifies(app: Flask, client: Any, headers: dict[str, str], export_id: str, tmp_path: Path) -> None:
    r = client.get(f"/v1/governance/evidence/{export_id}/pack.zip", headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    pack = tmp_path / "api.zip"
    pack.write_bytes(r.data)
    result = app.test_cli_runner().invoke(args=["evidence", "verify", str(pack)])
    assert result.exit_code == 0 and result.output.startswith("OK "), result.output


def test_the_api_runs_the_export_on_a_real_worker(rq_app: Flask, make_key: Callable[..., dict[str, str]],
                                                  start_worker: Callable[..., Any], tmp_path: Path) -> None:
    client, headers = rq_app.test_client(), make_key("privacy-office", "platform:governance")
    reader = make_key("auditor", "platform:read")
    r = client.post("/v1/governance/evidence", json=BODY, headers=headers)
    assert r.status_code == 202 and r.json["state"] == "queued", r.json
    export_id = r.json["id"]
    assert client.get(f"/v1/governance/evidence/{export_id}/pack.zip", headers=reader).status_code == 404
    start_worker("default")
    body = wait_for(_done(client, reader, export_id), timeout=60)
    assert body["attempts"] == 1 and set(body["summary"]) >= {"keys", "consent", "dsar", "retention", "holds",
                                                             "governance", "clauses"}
    _verifies(rq_app, client, reader, export_id, tmp_path)
    # A second delivery of the same job finds the export done and writes nothing.
    rt = rq_app.extensions["runtime"]
    assert evidence_jobs.execute(rt, rq_app.extensions["stores"], [], export_id) is None


def test_a_job_lost_from_redis_is_dispatched_again(rq_app: Flask, make_key: Callable[..., dict[str, str]],
                                                   start_worker: Callable[..., Any], redis_url: str,
                                                   tmp_path: Path) -> None:
    client, headers = rq_app.test_client(), make_key("privacy-office", "platform:governance")
    export_id = client.post("/v1/governance/evidence", json=BODY, headers=headers).json["id"]
    rt = rq_app.extensions["runtime"]
    with use_runtime(rt):
        assert evidence_jobs.reconcile() == []  # its job still waits: no duplicate
        Redis.from_url(redis_url).flushdb()  # Redis lost it
        assert evidence_jobs.reconcile() == [export_id]
        assert evidence_jobs.reconcile() == []  # dispatched once
    start_worker("default")
    body = wait_for(_done(client, headers, export_id), timeout=60)
    assert body["attempts"] == 1
    _verifies(rq_app, client, headers, export_id, tmp_path)


def test_a_dead_workers_export_is_taken_over_when_its_lease_expires(
        rq_app: Flask, make_key: Callable[..., dict[str, str]], start_worker: Callable[..., Any],
        tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from governance.evidence_models import EvidenceExport
    from service.db import utcnow

    client, headers = rq_app.test_client(), make_key("privacy-office", "platform:governance")
    export_id = client.post("/v1/governance/evidence", json=BODY, headers=headers).json["id"]
    rt = rq_app.extensions["runtime"]
    # An attempt that claimed the export and died: running, its lease in the past, its job gone.
    with rt.db.session() as session:
        session.execute(update(EvidenceExport).where(EvidenceExport.id == export_id)
                        .values(state="running", attempts=1, lease_token="dead",
                                lease_expires_at=utcnow() - timedelta(seconds=1)))
    Redis.from_url(rt.settings.redis_url).flushdb()
    with use_runtime(rt):
        assert evidence_jobs.reconcile() == [export_id]
    start_worker("default")
    body = wait_for(_done(client, headers, export_id), timeout=60)
    assert body["attempts"] == 2
    _verifies(rq_app, client, headers, export_id, tmp_path)


def test_scopes_validation_and_unknown_exports(rq_app: Flask, make_key: Callable[..., dict[str, str]]) -> None:
    client = rq_app.test_client()
    app_key = make_key("app-a", "consent:read,dsar:manage")
    assert client.post("/v1/governance/evidence", json=BODY, headers=app_key).status_code == 403
    gov = make_key("privacy-office", "platform:governance")
    r = client.post("/v1/governance/evidence", json={"from": "2026-12-31", "to": "2026-01-01"}, headers=gov)
    assert r.status_code == 422 and "to" in r.json["errors"]["json"]
    assert client.get("/v1/governance/evidence/nope", headers=gov).status_code == 404
