"""The status fast path answers exactly as the Flask route does, and leaves everything else to the route."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import text
from werkzeug.test import Client, EnvironBuilder

from consent.fastpath import StatusFastPath

QUERY = "subject_id=user-1&policy=privacy"


def _environ(query: str, headers: dict[str, str], method: str = "GET") -> dict[str, Any]:
    return EnvironBuilder(path="/v1/consents/status", query_string=query, headers=headers,
                          method=method).get_environ()


def _fast(app) -> StatusFastPath:
    assert isinstance(app.wsgi_app, StatusFastPath)
    return app.wsgi_app


def _both(app, headers: dict[str, str], query: str = QUERY) -> tuple[Any, Any]:
    """(fast path body or None, the Flask route's status and body) for the same request."""
    fast = _fast(app)
    answer = fast._answer(_environ(query, headers))
    route = Client(fast.next).get("/v1/consents/status", query_string=query, headers=headers)
    return (None if answer is None else json.loads(answer[0])), (route.status_code, route.json)


@pytest.mark.parametrize("scenario, reason", [
    ("no_consent", "no_consent"), ("consented", None), ("new_version", "new_version"), ("non_material", None),
    ("withdrawn", "withdrawn"), ("optional_withdrawn", None), ("gpc", None),
])
def test_same_answer_as_the_route(app, client, headers, consent, scenario, reason):
    if scenario != "no_consent":
        extra = {"Sec-GPC": "1"} if scenario == "gpc" else {}
        assert consent("user-1", analytics=True, ads=True, hdrs={**headers, **extra}).status_code == 201
    if scenario in ("new_version", "non_material"):
        r = client.post("/v1/policies/privacy/versions", headers=headers,
                        json={"version": "2.0", "text": "v2", "material": scenario == "new_version"})
        assert r.status_code == 201
    if scenario in ("withdrawn", "optional_withdrawn"):
        body = {"subject_id": "user-1", "policy": "privacy"}
        if scenario == "optional_withdrawn":
            body["purposes"] = ["analytics"]
        assert client.post("/v1/consents/withdraw", json=body, headers=headers).status_code == 200
    fast, (code, route) = _both(app, headers)
    assert code == 200 and fast == route
    assert fast["reason"] == reason


def test_a_key_not_yet_verified_goes_to_the_route_which_caches_it(app, client, make_key, policy):
    reader = make_key("app-a", "consent:read")
    assert _fast(app)._answer(_environ(QUERY, reader)) is None
    assert client.get(f"/v1/consents/status?{QUERY}", headers=reader).status_code == 200
    assert _fast(app)._answer(_environ(QUERY, reader)) is not None


@pytest.mark.parametrize("query, code", [
    ("subject_id=user-1", 422),
    # The route ignores extra query parameters and reads the first of repeated ones: it decides, not the fast path.
    ("subject_id=user-1&policy=privacy&extra=1", 200),
    ("subject_id=user-1&policy=privacy&policy=other", 200),
    ("subject_id=&policy=privacy", 422),
    ("subject_id=user-1&policy=Not%20A%20Key", 422),
    ("subject_id=user-1&policy=unknown", 404),
])
def test_anything_unusual_is_left_to_the_route(app, client, headers, policy, query, code):
    client.get(f"/v1/consents/status?{QUERY}", headers=headers)  # the key is verified and cached
    fast, (route_code, body) = _both(app, headers, query)
    assert fast is None
    assert route_code == code and client.get(f"/v1/consents/status?{query}", headers=headers).status_code == code
    if code != 200:
        assert body["message"]


def test_keys_without_the_scope_or_unknown_are_left_to_the_route(app, client, make_key, policy):
    writer = make_key("app-a", "consent:write")
    client.get(f"/v1/consents/status?{QUERY}", headers=writer)  # verified (and cached) even though it is a 403
    for headers, code in ((writer, 403), ({"Authorization": "Bearer psk_nope"}, 401), ({}, 401)):
        assert _fast(app)._answer(_environ(QUERY, headers)) is None
        assert client.get(f"/v1/consents/status?{QUERY}", headers=headers).status_code == code


def test_other_methods_and_paths_pass_through(app, client, headers, policy):
    client.get(f"/v1/consents/status?{QUERY}", headers=headers)
    assert client.head(f"/v1/consents/status?{QUERY}", headers=headers).status_code == 200
    assert client.post(f"/v1/consents/status?{QUERY}", headers=headers).status_code == 405


def test_other_apps_policies_stay_invisible(app, client, headers, make_key, policy, caplog):
    other = make_key("app-b", "consent:read")
    client.get(f"/v1/consents/status?{QUERY}", headers=other)
    with caplog.at_level(logging.WARNING, logger="consent.fastpath"):
        assert _fast(app)._answer(_environ(QUERY, other)) is None
    assert not caplog.records  # an expected 404 is the route's to answer, not a fast-path failure
    assert client.get(f"/v1/consents/status?{QUERY}", headers=other).status_code == 404


def test_fast_path_writes_the_access_line_without_personal_data(app, client, headers, policy, caplog):
    client.get(f"/v1/consents/status?{QUERY}", headers=headers)
    with caplog.at_level(logging.INFO, logger="privacy.access"):
        r = client.get("/v1/consents/status?subject_id=alice%40example.com&policy=privacy", headers=headers)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "privacy.access"]
    assert len(lines) == 1 and lines[0].startswith("GET /v1/consents/status 200 ")
    assert "alice" not in caplog.text and headers["Authorization"].split()[1] not in caplog.text


@pytest.mark.postgres_only
def test_a_connection_killed_under_the_fast_path_is_replaced(app, client, headers, consent, caplog):
    consent("user-1")
    client.get(f"/v1/consents/status?{QUERY}", headers=headers)
    db = app.extensions["db"]
    with db.autocommit() as raw:
        pid = raw.dbapi.info.backend_pid
    with db.engine.connect() as conn:  # waits (up to 5 s) for the backend to have gone
        conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    # The fast path sees the server closed its connection before using it, and answers on a new one itself.
    with caplog.at_level(logging.WARNING, logger="consent.fastpath"):
        r = client.get(f"/v1/consents/status?{QUERY}", headers=headers)
    assert r.status_code == 200 and r.json["reason"] is None
    assert [rec.getMessage() for rec in caplog.records if rec.name == "consent.fastpath"] == []
    with db.autocommit() as raw:
        assert raw.dbapi.info.backend_pid != pid
    assert consent("user-2").status_code == 201


def test_the_fast_path_sends_the_api_headers(app, client, headers, policy):
    """Its answer skips Flask's after_request hooks: it carries the headers every /v1 answer has itself."""
    from service.api import API_HEADERS

    client.get(f"/v1/consents/status?{QUERY}", headers=headers)  # the key is verified and cached
    assert _fast(app)._answer(_environ(QUERY, headers)) is not None
    fast = Client(_fast(app)).get("/v1/consents/status", query_string=QUERY, headers=headers)
    route = Client(_fast(app).next).get("/v1/consents/status", query_string=QUERY, headers=headers)
    for name, value in API_HEADERS:
        assert fast.headers[name] == route.headers[name] == value
