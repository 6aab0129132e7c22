"""A campaign to 1,000 people through real `rq worker` processes and a real SMTP server: the worker SIGKILLed
mid-campaign and started again, Redis flushed once; each person gets one notice, and a refused one is `failed`."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from incidents import jobs
from incidents.models import Delivery
from privacy import create_app
from service.mail import delivery
from service.mail.models import MailMessage
from service.runtime import use_runtime
from tests.conftest import _truncate, wait_for
from tests.incidents.conftest import body, config_text
from tests.incidents.test_assessment import _window
from tests.mailserver import Collector, SmtpServer

PEOPLE = 1000
REFUSED = "p0500@example.com"
MESSAGES = {"en": {"subject": "About your account", "text": "A storage bucket was public."}}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    handler = Collector(refuse_rcpt="550 5.1.1 <x>: mailbox unavailable", refuse_only=REFUSED)
    with SmtpServer(handler) as server:
        yield server


@pytest.fixture
def crash_env(worker_config: dict[str, str], inc_folder: Path, smtp: SmtpServer) -> dict[str, str]:
    path = inc_folder / "crash.toml"
    path.write_text(config_text(inc_folder).replace("batch_size = 2", "batch_size = 500")
                    .replace("lease_seconds = 30", "lease_seconds = 3"))
    # A short mail lease: a row a killed worker left `sending` is found (and marked unconfirmed) within the test.
    return {**worker_config, "PRIVACY_CONFIG": str(path), "SMTP_URL": smtp.url, "MAIL_FROM": "dpo@shop.example",
            "MAIL_RETRY_SECONDS": "0", "MAIL_MAX_ATTEMPTS": "2", "MAIL_LEASE_SECONDS": "3"}


@pytest.fixture
def crash_app(crash_env: dict[str, str]) -> Iterator[Flask]:
    app = create_app(crash_env)
    app.config["TESTING"] = True
    yield app
    _truncate(app)
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


def _seed(records) -> None:
    since, _ = _window()
    inside = since + timedelta(days=1)
    records("crm", {"contact": [(inside, {"user_id": f"u{i:04d}", "email": f"p{i:04d}@example.com"})
                                for i in range(PEOPLE)]})


def _state(client, headers, url):
    got = client.get(url, headers=headers).json
    return got if got["state"] in ("succeeded", "failed") else None


def _mail_states(app: Flask, campaign_id: str) -> dict[str, int]:
    with app.extensions["db"].sessions() as session:
        return dict(session.execute(select(MailMessage.state, func.count())
                                    .join(Delivery, Delivery.mail_id == MailMessage.id)
                                    .where(Delivery.campaign_id == campaign_id).group_by(MailMessage.state)).all())


def _scheduler_pass(app: Flask) -> None:
    """What the Procfile's scheduler runs on its intervals (the mail sweep, incidents' maintenance), run now."""
    with use_runtime(app.extensions["runtime"]):
        delivery.sweep()
        jobs.maintain()


@pytest.mark.postgres_only  # production's database; the worker and the test write at once
def test_one_notice_each_across_a_killed_worker_and_a_flushed_redis(crash_app, crash_env, start_worker, smtp,
                                                                    records, headers):
    _seed(records)
    client = crash_app.test_client()
    since, until = _window()
    made = client.post("/v1/incidents", headers=headers, json=body(
        occurred_from=since.isoformat(), occurred_until=until.isoformat())).json
    url = f"/v1/incidents/{made['id']}"
    worker = start_worker("default", config=crash_env)
    run = client.post(f"{url}/assessment-runs", headers=headers).json
    assert wait_for(lambda: _state(client, headers, f"{url}/assessment-runs/{run['id']}"), 60)["state"] == "succeeded"
    dry = client.post(f"{url}/campaigns", headers=headers, json={"messages": MESSAGES}).json
    dry = wait_for(lambda: _state(client, headers, f"{url}/campaigns/{dry['id']}"), 30)
    assert dry["counts"]["reachable"] == PEOPLE
    real = client.post(f"{url}/campaigns", headers=headers, json={"messages": MESSAGES, "dry_run": False}).json
    campaign = f"{url}/campaigns/{real['id']}"

    wait_for(lambda: len(smtp.handler.messages) >= 100, 60, interval=0.02)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker, mid-campaign
    worker.wait(timeout=10)
    Redis.from_url(crash_env["REDIS_URL"]).flushdb()  # every queued job lost with it
    before = len(smtp.handler.messages)
    assert before < PEOPLE, "the campaign finished before the kill"
    time.sleep(3.5)  # the campaign's and the mail rows' leases lapse, as they would over a scheduler interval
    start_worker("default", config=crash_env)
    _scheduler_pass(crash_app)  # the campaign and the queued rows dispatched again
    got = wait_for(lambda: _state(client, headers, campaign), 120)
    assert got["state"] == "succeeded" and got["counts"]["notices"] == PEOPLE

    def settled():
        _scheduler_pass(crash_app)
        states = _mail_states(crash_app, real["id"])
        return states if not states.get("queued") and not states.get("sending") else None

    states = wait_for(settled, 120, interval=1)
    per_recipient = Counter(rcpt for _, rcpts in smtp.handler.envelopes for rcpt in rcpts)
    assert max(per_recipient.values()) == 1  # nobody twice
    assert REFUSED not in per_recipient
    # Every row is sent but the refused one; a row whose SMTP transaction the kill cut is `unconfirmed`
    # (delivered or not, never sent twice): at most the one the worker was sending.
    assert states["failed"] == 1 and states.get("unconfirmed", 0) <= 1
    assert states["sent"] + states.get("unconfirmed", 0) == PEOPLE - 1
    assert len(per_recipient) >= PEOPLE - 2 and len(per_recipient) == len(smtp.handler.messages)
    with crash_app.extensions["db"].sessions() as session:
        [error] = session.scalars(select(MailMessage.last_error).where(MailMessage.state == "failed"))
    assert error.startswith("recipient refused: 550 5.1.1") and REFUSED not in error
    report = client.get(campaign, headers=headers).json
    assert report["counts"]["mail"]["failed"] == 1
