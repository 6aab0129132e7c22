"""Concurrent writers: no lost or duplicated events, and every chain stays intact."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from consent.ledger import verify
from consent.models import ConsentEvent


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
