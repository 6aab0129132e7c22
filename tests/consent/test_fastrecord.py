"""The recording fast path writes exactly what the Flask route writes, and leaves everything unusual to the route."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client, EnvironBuilder

from consent.fastpath import StatusFastPath
from consent.fastrecord import RecordFastPath
from consent.models import ConsentEvent
from service.api import API_HEADERS
from service.audit import AuditEvent


def _body(subject: str, **extra: Any) -> dict[str, Any]:
    return {"subject_id": subject, "policy": "privacy", "version": "1.0", "purposes": {"core": True, "ads": True},
            "channel": "android", "locale": "en-GB", **extra}


def _fast(app) -> RecordFastPath:
    outer = app.wsgi_app
    assert isinstance(outer, StatusFastPath) and isinstance(outer.next, RecordFastPath)
    return outer.next


def _environ(body: bytes | str, headers: dict[str, str], content_type: str = "application/json") -> dict[str, Any]:
    return EnvironBuilder(path="/v1/consents", method="POST", data=body, headers=headers,
                          content_type=content_type).get_environ()


def _events(app) -> int:
    with app.extensions["db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(ConsentEvent))


def _warm(client, headers) -> None:
    """A first call through Flask verifies and caches the key, as the status fast path needs too."""
    assert client.get("/v1/policies", headers=headers).status_code in (200, 403)  # cached either way


def test_same_record_as_the_route(app, client, headers, policy):
    _warm(client, headers)
    fast = _fast(app)
    answer = fast._answer(_environ(json.dumps(_body("user-1")), headers))
    assert answer is not None
    fast_json = json.loads(answer[0])  # (body, key id, rate-limit headers)
    route = Client(fast.next).post("/v1/consents", json=_body("user-2"), headers=headers)  # Flask itself
    assert route.status_code == 201
    assert fast_json.keys() == route.json.keys()
    for key in ("kind", "policy", "version", "purposes", "gpc"):
        assert fast_json[key] == route.json[key]
    # Byte for byte the route's format (compact JSON, a final newline): only the values differ.
    assert answer[0].endswith(b"}\n") and b": " not in answer[0] and route.data.endswith(b"}\n")
    # Recorded, chained, audited and receipted as the route's: both events in the ledger and the audit trail.
    with app.extensions["db"].sessions() as session:
        events = session.scalars(select(ConsentEvent).order_by(ConsentEvent.created_at)).all()
        audited = session.scalars(select(AuditEvent.resource_id).where(AuditEvent.action == "consent.recorded")).all()
    assert [e.id for e in events] == [fast_json["id"], route.json["id"]]
    assert set(audited) == {fast_json["id"], route.json["id"]}
    assert events[0].receipt == fast_json["receipt"]
    assert client.get("/v1/consents/status?subject_id=user-1&policy=privacy",
                      headers=headers).json["consent_required"] is False


def test_through_the_whole_stack_with_the_api_headers(app, client, headers, policy, caplog):
    _warm(client, headers)
    with caplog.at_level(logging.INFO, logger="privacy.access"):
        r = client.post("/v1/consents", json=_body("alice@example.com"), headers=headers)
    assert r.status_code == 201 and r.headers["Content-Type"] == "application/json"
    assert int(r.headers["Content-Length"]) == len(r.data)
    for name, value in API_HEADERS:
        assert r.headers[name] == value
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "privacy.access"]
    assert len(lines) == 1 and lines[0].startswith("POST /v1/consents 201 ")
    assert "alice" not in caplog.text and headers["Authorization"].split()[1] not in caplog.text


def test_gpc_header_applies(app, client, headers, policy):
    _warm(client, headers)
    answer = _fast(app)._answer(_environ(json.dumps(_body("user-1")), {**headers, "Sec-GPC": "1"}))
    body = json.loads(answer[0])
    assert body["gpc"] is True and body["purposes"]["ads"] is False


@pytest.mark.parametrize("body, content_type, code", [
    (json.dumps(_body("u", extra=1)), "application/json", 422),                       # unknown field
    (json.dumps({**_body("u"), "subject_id": "a\x00b"}), "application/json", 422),    # control character
    ('{"subject_id": "u", "subject_id": "v"}', "application/json", 400),              # a key twice
    ("[" * 100 + "]" * 100, "application/json", 400),                                  # too deep
    ("not json", "application/json", 400),
    ("[1, 2]", "application/json", 422),                                               # not an object
    (json.dumps(_body("u", version="9.9")), "application/json", 409),                 # not the current version
    (json.dumps(_body("u", policy="unknown")), "application/json", 404),
    (json.dumps({**_body("u"), "purposes": {"core": False}}), "application/json", 422),  # required refused
    (json.dumps(_body("u")), "text/plain", 415),
    (json.dumps(_body("u")), "application/json; charset=utf-8", 201),                # Flask decides parameters
])
def test_anything_unusual_is_left_to_the_route(app, client, headers, policy, body, content_type, code):
    _warm(client, headers)
    before = _events(app)
    environ = _environ(body, headers, content_type)
    assert _fast(app)._answer(environ) is None
    assert _events(app) == before  # nothing written by the fast path
    # The route reads the same bytes the fast path put back, and gives its own answer naming what is wrong.
    r = Client(app.wsgi_app).open(environ)
    assert r.status_code == code, r.json
    assert _events(app) == before + (code == 201)
    if code == 422:
        assert r.json["errors"] or r.json["message"]
    if code == 409:
        assert r.json["detail"]["current_version"] == "1.0"


def test_keys_without_the_scope_unknown_or_from_a_browser_are_left_to_the_route(app, client, make_key, policy):
    reader = make_key("app-a", "consent:read")
    _warm(client, reader)
    for hdrs, code in ((reader, 403), ({"Authorization": "Bearer psk_nope"}, 401), ({}, 401)):
        assert _fast(app)._answer(_environ(json.dumps(_body("u")), hdrs)) is None
        assert client.post("/v1/consents", json=_body("u"), headers=hdrs).status_code == code
    assert _events(app) == 0


def test_a_browser_call_goes_through_flask(app, client, headers, policy):
    _warm(client, headers)
    before = _events(app)
    environ = _environ(json.dumps(_body("u")), {**headers, "Origin": "https://app.example"})
    r = Client(app.wsgi_app).open(environ)
    assert r.status_code == 201 and _events(app) == before + 1
    assert "Access-Control-Allow-Origin" not in r.headers  # CORS is off unless configured: Flask decided


def test_other_apps_policies_stay_invisible(app, client, make_key, headers, policy, caplog):
    other = make_key("app-b", "consent:write")
    _warm(client, other)
    with caplog.at_level(logging.WARNING, logger="consent.fastrecord"):
        assert _fast(app)._answer(_environ(json.dumps(_body("u")), other)) is None
    assert not caplog.records  # the 404 is the route's to answer, not a failure of the fast path
    assert client.post("/v1/consents", json=_body("u"), headers=other).status_code == 404
    assert _events(app) == 0
