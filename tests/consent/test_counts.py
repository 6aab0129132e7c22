"""Consent counts: the fold adds ledger events to daily counts once, behind its lag, and rates() over the counts
plus the unfolded tail equals a count straight from the ledger."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from consent import counts, history
from consent.models import ConsentEvent
from service.db import utcnow

# When the module is imported: events are placed relative to it. Folds use the clock at the time they run, since
# the suite may reach these tests many minutes after importing them and the unmoved events are made then.
NOW = utcnow()
SINCE = NOW - timedelta(weeks=12)


def _id_at(moment: datetime) -> str:
    """A UUIDv7-ordered id made at `moment` (the ledger's ids sort by time)."""
    return str(uuid.UUID(int=(int(moment.timestamp() * 1000) << 80) | random.getrandbits(64)))


def _policy_id(app) -> int:
    with app.extensions["db"].session() as session:
        return session.scalar(text("SELECT id FROM policies WHERE key = 'privacy'"))


def _move(app, moves: dict[str, datetime]) -> None:
    with app.extensions["db"].session() as session:
        for event_id, when in moves.items():
            session.execute(update(ConsentEvent).where(ConsentEvent.id == event_id)
                            .values(id=_id_at(when), created_at=when))


def expected(app) -> dict[str, Any]:
    """What the console's old query said: every event since SINCE counted from the ledger."""
    with app.extensions["db"].session() as session:
        totals, purposes = counts.direct(session, ConsentEvent.policy_id == _policy_id(app),
                                         ConsentEvent.created_at >= SINCE)
    return {"weeks": [{"week": w, "events": n, "gpc": g} for w, (n, g) in sorted(totals.items())],
            "purposes": [{"week": w, "purpose": p, "granted": a, "denied": b, "withdrawn": c}
                         for (w, p), (a, b, c) in sorted(purposes.items())]}


def rates(app) -> dict[str, Any]:
    with app.extensions["db"].session() as session:
        return counts.rates(session, _policy_id(app), SINCE)


@pytest.fixture
def ledger(app, client, headers, consent) -> int:
    """40 events over 14 subjects with GPC and withdrawals, spread over five weeks, SINCE's own day and before
    SINCE; returns how many were moved into the past."""
    for n in range(14):
        body = {"subject_id": f"s{n}", "policy": "privacy", "version": "1.0", "gpc": n % 4 == 0,
                "purposes": {"core": True, "analytics": n % 2 == 0, "ads": n % 3 == 0},
                "channel": "web", "locale": "en-GB"}
        assert client.post("/v1/consents", json=body, headers=headers).status_code == 201
        assert consent(f"s{n}", analytics=n % 3 == 1).status_code == 201
        if n % 3 == 0:
            r = client.post("/v1/consents/withdraw", json={"subject_id": f"s{n}", "policy": "privacy",
                                                           **({"purposes": ["analytics"]} if n % 2 else {})},
                            headers=headers)
            assert r.status_code == 200, r.json
    with app.extensions["db"].session() as session:
        ids = list(session.scalars(select(ConsentEvent.id).order_by(ConsentEvent.id)))
    assert len(ids) == 33
    places = [SINCE - timedelta(days=3), SINCE - timedelta(minutes=5), SINCE + timedelta(minutes=5),
              SINCE + timedelta(hours=2), NOW - timedelta(weeks=5), NOW - timedelta(weeks=3, days=2),
              NOW - timedelta(days=8), NOW - timedelta(days=1)]
    moves = {}
    for i, event_id in enumerate(ids[:24]):  # in id order, so the moved ids keep time order
        moves[event_id] = places[i // 3] + timedelta(seconds=i)
    _move(app, moves)
    return len(moves)


def test_folding_in_batches_across_their_boundaries_equals_the_direct_count(app, ledger):
    before = expected(app)
    assert before["weeks"] and any(r["withdrawn"] for r in before["purposes"])
    assert any(w["gpc"] for w in before["weeks"])
    assert rates(app) == before  # nothing folded yet: all tail
    done = counts.fold(app.extensions["db"], now=utcnow() + timedelta(minutes=5), batch=4)
    assert (done.events, done.batches) == (33, 9)
    assert rates(app) == before
    again = counts.fold(app.extensions["db"], now=utcnow() + timedelta(minutes=5), batch=4)
    assert again.events == 0 and again.last_id == done.last_id
    assert rates(app) == before


def test_events_newer_than_the_horizon_stay_in_the_tail(app, ledger):
    done = counts.fold(app.extensions["db"], batch=5)  # the last nine were made just now, within the lag
    assert done.events == ledger
    with app.extensions["db"].session() as session:
        folded = session.scalar(text("SELECT sum(events) FROM consent_counts WHERE purpose = ''"))
    assert folded == ledger
    assert rates(app) == expected(app)


def test_withdrawals_and_gpc_count_as_the_console_always_counted_them(app, client, headers, consent):
    body = {"subject_id": "g", "policy": "privacy", "version": "1.0", "gpc": True,
            "purposes": {"core": True, "analytics": True, "ads": True}, "channel": "web", "locale": "en-GB"}
    assert client.post("/v1/consents", json=body, headers=headers).status_code == 201  # GPC denies ads
    assert consent("w", analytics=True).status_code == 201
    r = client.post("/v1/consents/withdraw", json={"subject_id": "w", "policy": "privacy",
                                                   "purposes": ["analytics"]}, headers=headers)
    assert r.status_code == 200
    counts.fold(app.extensions["db"], lag=timedelta(0), now=utcnow() + timedelta(seconds=1))
    with app.extensions["db"].session() as session:
        assert session.scalar(text("SELECT count(*) FROM consent_events WHERE id > "
                                   "(SELECT last_id FROM consent_count_marks)")) == 0
    got = rates(app)
    assert got == expected(app)
    week = got["weeks"][-1]
    assert (week["events"], week["gpc"]) == (3, 1)
    by = {r["purpose"]: r for r in got["purposes"] if r["week"] == week["week"]}
    assert (by["analytics"]["granted"], by["analytics"]["withdrawn"]) == (2, 1)
    assert (by["ads"]["granted"], by["ads"]["denied"], by["ads"]["withdrawn"]) == (0, 2, 1)
    # a withdrawal counts only the purposes it turns off: core stays on and is not counted again
    assert (by["core"]["granted"], by["core"]["denied"], by["core"]["withdrawn"]) == (2, 0, 0)


def test_an_erased_chain_stays_in_the_counts_as_history(app, ledger):
    counts.fold(app.extensions["db"], now=utcnow() + timedelta(minutes=5))
    before = rates(app)
    with app.extensions["db"].session() as session:
        app_id = session.scalar(text("SELECT id FROM apps WHERE slug = 'app-a'"))
        victim = session.scalar(select(ConsentEvent.subject).order_by(ConsentEvent.id.desc()).limit(1))
        assert history.erase_subject_chain(session, app_id, victim, "dsar:test")
    assert rates(app) == before  # numbers, not personal data: the week's totals do not shrink
    assert expected(app) != before


def test_concurrent_folds_count_every_event_once(app, ledger):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            counts.fold(app.extensions["db"], now=utcnow() + timedelta(minutes=5), batch=3)
        except Exception as exc:  # noqa: BLE001 (reported below: a thread's exception would otherwise vanish)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with app.extensions["db"].session() as session:
        assert session.scalar(text("SELECT sum(events) FROM consent_counts WHERE purpose = ''")) == 33
    assert rates(app) == expected(app)


def test_flask_ledger_counts_folds_by_hand_and_leaves_the_last_two_minutes(app, ledger):
    result = app.test_cli_runner().invoke(args=["ledger", "counts", "--batch", "7"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"folded {ledger} events in 4 batch(es)")
    assert rates(app) == expected(app)
