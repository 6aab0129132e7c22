"""Idempotency-Key on submissions (service.idempotency, through POST /v1/requests): a retry answers the first
result and creates nothing; the key is per app, refused when malformed or reused for another request, forgotten
after its time; concurrent retries create one request; and it is in the OpenAPI document."""

import threading
from datetime import timedelta

from sqlalchemy import func, select, text, update

from dsar.models import DsarRequest
from service.db import utcnow
from service.idempotency import IdempotencyKey, purge_expired

MANAGE = "dsar:submit,dsar:manage"
BODY = {"type": "erasure", "subject": {"user_id": "1"}, "jurisdiction": "GDPR", "verified": True}


def _post(client, headers, key, body=BODY):
    return client.post("/v1/requests", json=body, headers={**headers, "Idempotency-Key": key})


def _count(app):
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(DsarRequest))


def test_a_retry_answers_the_first_result_and_creates_nothing(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    first = _post(client, h, "k-1")
    assert first.status_code == 202 and first.json["status"] == "completed"
    assert "Idempotent-Replayed" not in first.headers
    again = _post(client, h, "k-1")
    assert again.status_code == 202 and again.data == first.data  # byte for byte
    assert again.headers["Idempotent-Replayed"] == "true" and again.mimetype == "application/json"
    assert _count(inline_app) == 1
    # without a key, or with another key, each POST is a new request
    assert client.post("/v1/requests", json=BODY, headers=h).json["id"] != first.json["id"]
    assert _post(client, h, "k-2").json["id"] != first.json["id"]
    assert _count(inline_app) == 3


def test_the_same_key_for_another_request_is_refused(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    assert _post(client, h, "k-1").status_code == 202
    other = _post(client, h, "k-1", {**BODY, "subject": {"user_id": "2"}})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json["message"] and "Idempotency-Key" in other.json["errors"]["headers"]
    assert _count(inline_app) == 1


def test_a_malformed_key_is_refused_naming_the_header(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    for bad in ("", "x" * 256, "with space", "caf\u00e9"):
        r = client.post("/v1/requests", json=BODY, headers={**h, "Idempotency-Key": bad})
        assert r.status_code == 422, bad
        assert r.json["errors"]["headers"]["Idempotency-Key"], bad
    assert _count(inline_app) == 0


def test_keys_are_per_app(inline_app, key_for, make_key):
    client = inline_app.test_client()
    mine, theirs = key_for(inline_app, MANAGE), make_key("other-app", MANAGE)
    a, b = _post(client, mine, "shared"), _post(client, theirs, "shared")
    assert a.status_code == b.status_code == 202 and a.json["id"] != b.json["id"]
    assert _count(inline_app) == 2
    # another app's key never reveals the first app's answer
    assert client.get(f"/v1/requests/{a.json['id']}", headers=theirs).status_code == 404


def test_a_key_is_forgotten_after_its_time(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    first = _post(client, h, "k-1")
    db = inline_app.extensions["db"]
    with db.session() as session:
        session.execute(update(IdempotencyKey).values(expires_at=utcnow()))
    again = _post(client, h, "k-1")
    assert again.status_code == 202 and again.json["id"] != first.json["id"]
    with db.session() as session:
        session.execute(update(IdempotencyKey).values(expires_at=utcnow()))
    assert purge_expired(db) == 1
    result = inline_app.test_cli_runner().invoke(args=["dsar", "maintain"])
    assert result.exit_code == 0 and "idempotency_keys_expired=0" in result.output


def test_answers_are_stored_sealed_and_keys_as_digests(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    first = _post(client, h, "my-key-0001")
    with inline_app.extensions["db"].sessions() as session:
        dump = " ".join(str(v) for row in session.execute(text("SELECT * FROM idempotency_keys")) for v in row)
    assert "my-key-0001" not in dump  # a digest of the key
    assert "completed" not in dump and "erasure" not in dump and first.json["due_at"] not in dump  # sealed


def test_a_first_request_that_died_after_its_commit_is_answered_from_the_resource(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    first = _post(client, h, "k-1")
    with inline_app.extensions["db"].session() as session:  # as if the process died before storing its answer
        session.execute(update(IdempotencyKey).values(status=None, body=None,
                                                      created_at=utcnow() - timedelta(minutes=2)))
    again = _post(client, h, "k-1")
    assert again.status_code == 202 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(inline_app) == 1


def test_concurrent_retries_create_one_request(inline_app, key_for):
    h = key_for(inline_app, MANAGE)
    answers, barrier = [], threading.Barrier(6)

    def post():
        client = inline_app.test_client()
        barrier.wait()
        answers.append(_post(client, h, "race"))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # One did the work; the others answer its result, byte for byte.
    assert [a.status_code for a in answers] == [202] * 6
    assert len({a.data for a in answers}) == 1
    assert _count(inline_app) == 1


def test_the_header_is_documented(inline_app):
    spec = inline_app.test_client().get("/openapi.json").json
    for path in ("/v1/requests", "/v1/retention/runs"):
        params = spec["paths"][path]["post"].get("parameters", [])
        assert any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in params), path
