"""`pg_ctl restart -m fast` of the database while clients record consents through the web process (nginx and
gunicorn, as the Procfile runs it): every 201 is in the ledger afterwards and the ledger verifies, every request
during the outage is a 503 with Retry-After (never a 500, never a stack trace), and the service answers again
within 5 s of the database being back, with no process restarted. The server is the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import ROOT

pytestmark = pytest.mark.postgres_only  # production's shape: the web process on PostgreSQL

CLIENTS = 6
BEFORE, AFTER = 1.5, 6.0  # seconds of load before the restart and after the database is back
RECOVERY = 5.0  # the service must answer again within this long of the database being back


@dataclass
class Answer:
    sent: float  # monotonic time the request was sent
    done: float
    status: int
    retry_after: str | None
    body: bytes


def _post(base: str, path: str, body: dict, headers: dict[str, str]) -> Answer:
    sent = time.monotonic()
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Answer(sent, time.monotonic(), r.status, r.headers.get("Retry-After"), r.read())
    except urllib.error.HTTPError as err:
        return Answer(sent, time.monotonic(), err.code, err.headers.get("Retry-After"), err.read())


def test_consents_survive_a_restart_under_load(web_process, pg_app, pg_headers, throwaway_postgres, tmp_path):
    web = web_process(WEB_CONCURRENCY="3", DATABASE_URL=throwaway_postgres.url, INSTANCE_PATH=str(tmp_path))
    answers: list[Answer] = []
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            answers.append(_post(web.base, "/v1/consents", {
                "subject_id": f"user-{n}-{i % 5}", "policy": "privacy", "version": "1",
                "purposes": {"core": i % 2 == 0}, "channel": "web", "locale": "en"}, pg_headers))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(BEFORE)
        restarting = time.monotonic()
        throwaway_postgres.restart("fast")  # returns once the server accepts connections again
        back = time.monotonic()
        time.sleep(AFTER)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    statuses = {a.status for a in answers}
    assert statuses <= {201, 503}, (sorted(statuses), web.output()[-6000:])
    before = [a for a in answers if a.done < restarting]
    assert before and all(a.status == 201 for a in before)
    unavailable = [a for a in answers if a.status == 503]
    for a in unavailable:
        assert a.retry_after is not None and a.retry_after.isdigit(), a
        error = json.loads(a.body)
        assert error["code"] == 503 and error["message"], error
        assert b"Traceback" not in a.body and b"File \"" not in a.body
    # Back within RECOVERY seconds of the database: nothing sent after that fails, and requests got through.
    late = [a for a in answers if a.sent > back + RECOVERY]
    assert late and all(a.status == 201 for a in late), [(round(a.sent - back, 2), a.status) for a in late]
    recovered = min(a.done for a in answers if a.status == 201 and a.sent >= back) - back
    assert recovered < RECOVERY
    last_failure = max((a.sent - back for a in unavailable), default=None)

    # Every acknowledged consent is in the ledger; the ledger verifies.
    acknowledged = {json.loads(a.body)["id"] for a in answers if a.status == 201}
    with pg_app.extensions["db"].engine.connect() as conn:
        stored = set(conn.scalars(text("SELECT id::text FROM consent_events")))
    lost = acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged consent(s) lost"
    env = {**os.environ, "DATABASE_URL": throwaway_postgres.url, "INSTANCE_PATH": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("REDIS_URL", None)
    verify = subprocess.run(["flask", "--app", "wsgi", "ledger", "verify"], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=120)
    assert verify.returncode == 0 and "ledger intact" in verify.stdout, verify.stderr
    output = web.output()
    assert "Traceback" not in output, output[-4000:]
    print(f"\n{len(answers)} consents sent by {CLIENTS} clients; {len(acknowledged)} acknowledged (201), all in the "
          f"ledger; {len(unavailable)} answered 503; restart took {back - restarting:.2f} s; first 201 sent after "
          f"the database was back answered {recovered:.2f} s after it; last 503 sent at "
          f"{'-' if last_failure is None else f'{last_failure:+.2f} s'} from it")
