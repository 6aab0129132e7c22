"""DRP on the production path: rights requests and callbacks run by a real rq worker, and a callback Redis lost is
sent again from the database by the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import select, update

from dsar.agents.models import Callback
from dsar.agents.sweep import sweep
from service.runtime import use_runtime
from tests.conftest import wait_for
from tests.drp.conftest import Agent, register
from tests.dsar.conftest import person


def test_worker_runs_the_request_and_a_lost_callback_is_resent(dsar_app, key_for, dsar_worker, receiver,
                                                                redis_url):
    client, admin = dsar_app.test_client(), key_for(dsar_app)
    agent = Agent("AA_ONE")
    assert register(dsar_app, client, admin, agent).status_code == 201
    assert agent.setup(client).status_code == 200
    receiver.fail = 1  # the worker's first POST is refused: the row waits for its backoff
    r = agent.exercise(client, "deletion", regime="ccpa", user_id="2", email=person(2).user["email"],
                       email_verified=True, status_callback=receiver.url)
    assert r.status_code == 200 and r.json["status"] == "in_progress"  # saved; the worker does the rest
    dsar_worker()

    def refused_once():
        with dsar_app.extensions["db"].sessions() as session:
            row = session.scalars(select(Callback)).first()
            return row if row is not None and row.attempts == 1 and row.state == "pending" else None

    row = wait_for(refused_once, timeout=60)
    assert row.last_error == "HTTP 500" and receiver.received == []
    redis.Redis.from_url(redis_url).flushdb()  # whatever Redis held of it is gone
    with dsar_app.extensions["db"].session() as session:
        session.execute(update(Callback).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    with use_runtime(dsar_app.extensions["runtime"]):
        assert sweep()["callbacks_enqueued"] == 1
    assert [c["status"] for c in receiver.wait(1, timeout=60)] == ["fulfilled"]
    assert agent.status(client, r.json["request_id"]).json["status"] == "fulfilled"
