"""Incident benchmark on PostgreSQL, Redis and a local SMTP server, executed by the worker the Procfile starts (its
`worker:` line, run as written): (1) an assessment of who was affected over a table of 1,000,000 rows of one
category in the sql store, from request to succeeded, against a hand-written `SELECT DISTINCT` of the same
subjects over the same window in the same run, with the worker's peak memory; (2) a notice campaign with the
throttle off, from request to every notice accepted by the SMTP server, against a plain smtplib loop sending the
same number of messages of the same size to the same server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402
from alembic import command  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench import workers  # noqa: E402
from bench.consent import ADMIN_URL, fresh_database, libpq  # noqa: E402
from bench.store_subjects import NOW, WINDOWS, child  # noqa: E402
from bench.store_subjects import create_database as create_store  # noqa: E402
from tests.mailserver import Collector, SmtpServer  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
SERVICE_DB = "bench_incidents"
RATIO_TARGET, MEMORY_TARGET_MB, RATE_TARGET = 1.5, 200, 200


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def wait(client: Any, headers: dict[str, str], url: str, done: tuple[str, ...] = ("succeeded",)) -> dict[str, Any]:
    while True:
        body = client.get(url, headers=headers).json
        if body["state"] not in ("queued", "running"):
            assert body["state"] in done, body
            return body
        time.sleep(0.05)


def incident(client: Any, headers: dict[str, str], since: Any, until: Any) -> str:
    r = client.post("/v1/incidents", headers=headers, json={
        "title": "Bench", "description": "bench", "discovered_at": NOW.isoformat(), "jurisdictions": ["GDPR"],
        "occurred_from": since.isoformat(), "occurred_until": until.isoformat(),
        "scope": [{"store": "bench", "category": "events"}]})
    assert r.status_code == 201, r.json
    return r.json["id"]


def assess(client: Any, headers: dict[str, str], incident_id: str) -> tuple[float, dict[str, Any]]:
    """Request to succeeded, as the run records it (started by the request, finished by the worker)."""
    began = time.monotonic()
    r = client.post(f"/v1/incidents/{incident_id}/assessment-runs", headers=headers)
    assert r.status_code == 202, r.json
    body = wait(client, headers, f"/v1/incidents/{incident_id}/assessment-runs/{r.json['id']}")
    return time.monotonic() - began, body


def window_of(store_url: str, people: int) -> Any:
    """The start of the latest window holding about `people` rows (nearly one person each)."""
    with psycopg.connect(libpq(store_url)) as conn:
        return conn.execute("SELECT created_at FROM events ORDER BY created_at DESC OFFSET %s LIMIT 1",
                            (people,)).fetchone()[0]


def sent_count(app: Any, campaign_id: str) -> int:
    from incidents.models import Delivery
    from service.mail.models import MailMessage

    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(Delivery).join(
            MailMessage, MailMessage.id == Delivery.mail_id).where(
            Delivery.campaign_id == campaign_id, MailMessage.state == "sent")) or 0


def campaign(app: Any, client: Any, headers: dict[str, str], incident_id: str, people: int) -> float:
    """Request to every notice accepted by the SMTP server (the outbox rows `sent`)."""
    messages = {"en": {"subject": "About your account", "text": "A copy of our event log was readable.\n\n" * 5}}
    dry = client.post(f"/v1/incidents/{incident_id}/campaigns", headers=headers, json={"messages": messages})
    assert dry.status_code == 202, dry.json
    wait(client, headers, f"/v1/incidents/{incident_id}/campaigns/{dry.json['id']}")
    began = time.monotonic()
    real = client.post(f"/v1/incidents/{incident_id}/campaigns", headers=headers,
                       json={"messages": messages, "dry_run": False})
    assert real.status_code == 202, real.json
    while sent_count(app, real.json["id"]) < people:
        time.sleep(0.1)
    return time.monotonic() - began


def smtplib_loop(server: SmtpServer, sample: Any, count: int) -> float:
    """The baseline: `count` copies of a delivered notice over one connection, nothing else."""
    began = time.monotonic()
    with smtplib.SMTP("127.0.0.1", server.port) as smtp:
        for i in range(count):
            smtp.send_message(sample, from_addr="privacy@example.com", to_addrs=[f"p{i}@example.com"])
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the one category (5 per person)")
    parser.add_argument("--people", type=int, default=10_000, help="people notified by the campaign")
    parser.add_argument("--repeat", type=int, default=3, help="assessments and baselines (the median counts)")
    args = parser.parse_args()

    print(f"seeding {args.rows:,} rows ({args.rows // 5:,} people, 700 days) in the sql store", flush=True)
    store_url = create_store(args.rows)
    service_url = fresh_database(ADMIN_URL, name=SERVICE_DB)
    instance = Path(tempfile.mkdtemp(prefix="bench-incidents-"))
    config = instance / "privacy.toml"
    config.write_text(f"""
[[stores]]
name = "bench"
plugin = "sql"
url = "{store_url}"

  [[stores.tables]]
  table = "events"
  category = "events"
  identity = {{ user_id = "user_id", email = "email" }}
  timestamp_column = "created_at"
""")
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    import logging

    from privacy import create_app
    from service.cli import alembic_config
    from service.tenancy import create_app_tenant, create_key

    collector = Collector()
    server = SmtpServer(collector).__enter__()
    env = {"DATABASE_URL": service_url, "INSTANCE_PATH": str(instance), "PRIVACY_CONFIG": str(config),
           "REDIS_URL": REDIS_URL, "SMTP_URL": server.url, "MAIL_FROM": "privacy@example.com"}
    command.upgrade(alembic_config(service_url), "head")
    app = create_app(env)
    logging.getLogger("privacy.access").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    worker = workers.start(workers.procfile_command(REDIS_URL), {**os.environ, **env, "PYTHONPATH": str(ROOT)},
                           REDIS_URL)
    try:
        with app.extensions["db"].session() as session:
            create_app_tenant(session, "bench")
            _, secret = create_key(session, "bench", frozenset({"incidents:manage"}))
        headers, client = {"Authorization": f"Bearer {secret}"}, app.test_client()
        since, until = WINDOWS["year"]
        hand, service, subjects_only = [], [], []
        for round_ in range(args.repeat):  # alternated, so the machine's other load falls on all alike
            base = child("distinct", store_url, "year", 1000)
            plugin = child("plugin", store_url, "year", 1000)
            took, run = assess(client, headers, incident(client, headers, since, until))
            assert run["distinct_subjects"] == base["subjects"], (run["distinct_subjects"], base["subjects"])
            hand.append(base["seconds"])
            subjects_only.append(plugin["seconds"])
            service.append(took)
            print(f"  round {round_ + 1}: {base['subjects']:,} people; SELECT DISTINCT {base['seconds']:.2f} s, "
                  f"subjects() {plugin['seconds']:.2f} s, assessment {took:.2f} s", flush=True)
        assess_peak = peak_mb(worker.pid)

        start = window_of(store_url, args.people)
        took, run = assess(client, headers, incident_id := incident(client, headers, start,
                                                                      NOW + timedelta(seconds=1)))
        people = run["with_contact"]
        print(f"campaign to {people:,} people (assessed in {took:.1f} s)", flush=True)
        sending = campaign(app, client, headers, incident_id, people)
        assert len(collector.messages) == people, (len(collector.messages), people)
        sample = collector.messages[0]
        loop = smtplib_loop(server, sample, people)
        campaign_peak = peak_mb(worker.pid)
    finally:
        workers.stop(worker)
        server.__exit__()
        app.extensions["stores"].close()
        app.extensions["db"].dispose()
        fresh_database(ADMIN_URL, drop=True, name=SERVICE_DB)
        fresh_database(ADMIN_URL, drop=True, name="bench_store_subjects")
        redis.flushdb()
        shutil.rmtree(instance, ignore_errors=True)

    h, s, p = statistics.median(hand), statistics.median(service), statistics.median(subjects_only)
    print(f"\n{'median of ' + str(args.repeat):<64}{'figure':>10}{'target':>10}  verdict")
    print(f"{'hand-written SELECT DISTINCT of the window, s':<64}{h:>10.2f}")
    print(f"{'  the sql store subjects() alone (the listing the job reads), s':<64}{p:>10.2f}")
    print(f"{'assessment, request to succeeded (Procfile worker), s':<64}{s:>10.2f}")
    print(f"{'assessment / SELECT DISTINCT':<64}{s / h:>10.2f}{'<= ' + str(RATIO_TARGET):>10}  "
          f"{'ok' if s / h <= RATIO_TARGET else 'MISSED'}")
    print(f"{'worker peak memory after the assessments (VmHWM), MB':<64}{assess_peak:>10.1f}"
          f"{'< ' + str(MEMORY_TARGET_MB):>10}  {'ok' if assess_peak < MEMORY_TARGET_MB else 'MISSED'}")
    rate, base_rate = people / sending, people / loop
    print(f"{f'campaign to {people:,}: notices per second, request to all sent':<64}{rate:>10.0f}"
          f"{'>= ' + str(RATE_TARGET):>10}  {'ok' if rate >= RATE_TARGET else 'MISSED'}")
    print(f"{'  plain smtplib loop, one connection, same messages: per second':<64}{base_rate:>10.0f}")
    print(f"{'  campaign / smtplib loop':<64}{rate / base_rate:>10.2f}")
    print(f"{'worker peak memory after the campaign (VmHWM), MB':<64}{campaign_peak:>10.1f}")
    print("The assessment also keeps every person's identities encrypted for the campaign and deduplicates them by"
          "\nkeyed hashes; the SELECT DISTINCT only reads them.")


if __name__ == "__main__":
    main()
