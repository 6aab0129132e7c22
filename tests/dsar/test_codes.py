"""Verification codes cannot be guessed by resending: wrong guesses count per request across resends, and resends
are limited per request per hour (429 with Retry-After)."""

from sqlalchemy import func, select, update

from dsar.models import DsarRequest
from service.mail.models import MailMessage
from tests.dsar.test_requests import code_of, new


def _wrong(code):
    return f"{(int(code) + 1) % 10**6:06d}"


def _sent(app, request_id):
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(MailMessage)
                              .where(MailMessage.ref == request_id, MailMessage.kind == "verification_code"))


def test_wrong_guesses_count_across_resends(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    for _ in range(4):
        r = client.post(f"/v1/requests/{rid}/verify", json={"code": _wrong(code_of(inline_app, rid))},
                        headers=headers)
        assert r.status_code == 422
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 200
    code = code_of(inline_app, rid)
    r = client.post(f"/v1/requests/{rid}/verify", json={"code": _wrong(code)}, headers=headers)
    assert r.status_code == 423  # the fifth wrong guess for this request, whatever code it was aimed at
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": code}, headers=headers).status_code == 423
    assert client.get(f"/v1/requests/{rid}", headers=headers).json["status"] == "locked"
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 409


def test_resends_are_limited_per_request_per_hour(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    other = new(client, headers).json["id"]
    answers = [client.post(f"/v1/requests/{rid}/resend-code", headers=headers) for _ in range(50)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    refused = answers[3:]
    assert {a.status_code for a in refused} == {429}
    retry_after = int(refused[0].headers["Retry-After"])
    assert 3500 <= retry_after <= 3600
    assert "resend" in refused[0].json["message"]
    assert _sent(inline_app, rid) == 1 + 3  # the first code and three resends, not 51 messages
    # the limit is per request: another request of the same app still gets its resends
    assert client.post(f"/v1/requests/{other}/resend-code", headers=headers).status_code == 200
    # the last code sent still works
    code = code_of(inline_app, rid)
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": code}, headers=headers).status_code == 200


def test_resends_are_allowed_again_after_the_hour(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    for _ in range(3):
        assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 200
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 429
    with inline_app.extensions["db"].session() as session:  # an hour and a minute pass
        req = session.get(DsarRequest, rid)
        sends = [s - 61 * 60 for s in req.code_resent_at]  # Unix seconds of the resends
        session.execute(update(DsarRequest).where(DsarRequest.id == rid).values(code_resent_at=sends))
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 200


def test_resend_limit_is_configurable(inline_app_with, key_for):
    app = inline_app_with("code_resends_per_hour = 1\n")
    client, headers = app.test_client(), key_for(app, "dsar:submit")
    rid = new(client, headers).json["id"]
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 200
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 429


def test_a_wrong_code_is_counted_in_the_callers_unit_of_work(inline_app, key_for):
    """dsar.service.verify commits nothing itself: it counts a wrong code in the caller's transaction and hands
    back the error, and the caller commits the count before answering it (the route does; the lock-out tests
    above see the count stand)."""
    from dsar import service as dsar
    from service.errors import Invalid

    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    wrong = _wrong(code_of(inline_app, rid))
    rt = inline_app.extensions["runtime"]
    with rt.db.sessions() as session:
        actor = dsar.Actor(session.get(DsarRequest, rid).app_id, "key:test")
        refused = dsar.verify(session, rt, actor, rid, wrong)
        assert isinstance(refused, Invalid) and "4 attempts left" in refused.errors["code"][0]
        session.rollback()  # the caller gives up its unit of work: the count goes with it
    with rt.db.sessions() as session:
        assert session.get(DsarRequest, rid).code_attempts == 0
