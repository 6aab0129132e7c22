"""Concurrent writers: no lost or duplicated events, and every chain stays intact."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from consent.chain import append_and_commit
from consent.context import Context
from consent.ledger import verify
from consent.models import ConsentEvent, PolicyVersion
from consent.policies import get_policy
from consent.views import PolicyView, VersionRow
from service.audit import AuditEvent
from service.tenancy import Principal


def test_concurrent_consents_for_one_subject_and_many(app, client, headers, policy, db_session):
    def post(i: int) -> int:
        subject = "same-user" if i % 2 else f"user-{i}"
        body = {"subject_id": subject, "policy": "privacy", "version": "1.0",
                "purposes": {"core": True, "analytics": bool(i % 3)}, "channel": "web", "locale": "en"}
        return app.test_client().post("/v1/consents", json=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(post, range(40)))
    assert codes == [201] * 40
    assert db_session.scalar(select(func.count()).select_from(ConsentEvent)) == 40
    chains: dict[str, list[int]] = {}
    for subject, seq in db_session.execute(select(ConsentEvent.subject, ConsentEvent.seq)):
        chains.setdefault(subject, []).append(seq)
    assert sorted(len(c) for c in chains.values()) == [1] * 20 + [20]
    assert all(sorted(c) == list(range(1, len(c) + 1)) for c in chains.values())
    assert list(verify(db_session)) == []


@pytest.mark.postgres_only
def test_an_unlocked_append_on_a_stale_tail_takes_the_locked_path(app, consent, db_session):
    """The one-statement append reads the tail without a lock; a tail that moved must not fork the chain."""
    assert consent("u1").status_code == 201
    first = db_session.scalars(select(ConsentEvent)).one()
    db = app.extensions["db"]
    policy = PolicyView.of(get_policy(db_session, first.app_id, "privacy"))
    version = VersionRow.of(db_session.get(PolicyVersion, first.version_id))
    ctx = Context(principal=Principal(first.app_id, "app-a", "k1", frozenset()),
                  keys=app.extensions["keys"], settings=app.config["SETTINGS"])
    with db.autocommit() as raw:
        # tail=None: as if read before `first` was committed, so the unlocked insert collides on seq 1.
        event = append_and_commit(db, ctx, policy, version, first.subject, "consent",
                                  {"core": True, "analytics": False, "ads": False}, raw=raw, tail=None,
                                  gpc=False, gpc_denied=[], channel="web", locale=None, evidence=None)
    assert (event.seq, event.prev_hash) == (2, first.hash)
    assert db_session.scalar(select(func.count()).select_from(ConsentEvent)) == 2
    assert db_session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "consent.recorded")) == 2
    assert list(verify(db_session)) == []


def test_each_recorded_consent_has_one_audit_entry_naming_it(app, consent, db_session):
    ids = {consent(f"u{i}").json["id"] for i in range(3)}
    audited = db_session.execute(select(AuditEvent.resource_type, AuditEvent.resource_id, AuditEvent.details)
                                 .where(AuditEvent.action == "consent.recorded")).all()
    assert sorted(r.resource_id for r in audited) == sorted(ids)
    assert {r.resource_type for r in audited} == {"consent_event"}
    assert all(r.details == {"policy": "privacy", "version": "1.0", "gpc": False} for r in audited)
