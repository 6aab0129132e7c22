"""Invalid input answers a 4xx naming what is wrong, never a 500: NUL bytes, lone surrogates, over-long strings,
huge page numbers, deeply nested JSON and huge integers, on every /v1 endpoint found in the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from service.api import MAX_PAGE
from service.bodies import MAX_DEPTH as MAX_JSON_DEPTH

NUL = "a\x00b"
SURROGATE = "a\ud800b"
# A surrogate cannot travel in a URL: its UTF-8 form decodes to U+FFFD; the encoded bytes are sent anyway.
SURROGATE_IN_URL = "a%ED%A0%80b"


def _spec(client) -> dict[str, Any]:
    return client.get("/openapi.json").json


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """(method, path, operation, parameters) of every /v1 operation; parameters include the path's own."""
    ops = []
    for path, item in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method != "parameters":
                ops.append((method, path, op, [*shared, *op.get("parameters", [])]))
    return ops


def _fill(path: str, params: list[dict[str, Any]], value: str = "x") -> str:
    for p in params:
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", value)
    return path


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for alternative in [*schema.get("anyOf", []), *schema.get("allOf", [])]:  # allOf: a $ref with its own rules
        if "$ref" in alternative:
            return _resolve(spec, alternative)
    return schema


def _strings(spec: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...] = ()):
    """(path, schema) of every string a JSON body can carry; a list contributes its first item (index 0)."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if kind == "string":
        yield path, schema
    elif kind == "array":
        yield from _strings(spec, schema["items"], (*path, 0))
    for name, prop in schema.get("properties", {}).items():
        yield from _strings(spec, prop, (*path, name))


def _body_at(path: tuple[Any, ...], value: Any) -> Any:
    for step in reversed(path):
        value = [value] if step == 0 else {step: value}
    return value


def _named(errors: dict[str, Any], location: str, path: tuple[Any, ...]) -> bool:
    node: Any = errors.get(location, {})
    for step in path:
        if not isinstance(node, dict) or str(step) not in {str(k) for k in node}:
            return False
        node = next(v for k, v in node.items() if str(k) == str(step))
    return True


def _bad_values(schema: dict[str, Any]) -> list[tuple[str, str]]:
    values = [("nul", NUL), ("surrogate", SURROGATE)]
    if "maxLength" in schema:
        n = schema["maxLength"]
        long = {"email": "a" * n + "@example.com", "url": "https://example.com/" + "a" * n}.get(
            schema.get("format", ""), "a" * (n + 1))
        values.append(("too long", long))
    return values


def _send(client, method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    if body is None:
        return client.open(url, method=method.upper(), headers=headers)
    # json.dumps escapes a lone surrogate as \ud800, which is how a client's JSON carries one.
    return client.open(url, method=method.upper(), headers=headers, data=json.dumps(body),
                       content_type="application/json")


def test_every_blueprint_reading_arguments_uses_the_service_parsers(app):
    """A blueprint made from flask_smorest.Blueprint would parse JSON without limits and pages without bound."""
    from service.api import ApiBlueprint

    api = app.extensions["api"]
    plain = []
    for name, blueprint in app.blueprints.items():
        views = [view for endpoint, view in app.view_functions.items() if endpoint.startswith(f"{name}.")]
        reads = any({"arguments", "pagination"} & set(getattr(view, "_apidoc", {})) for view in views)
        if reads and not isinstance(blueprint, ApiBlueprint):
            plain.append(name)
    assert api is not None and plain == []


# Strings read into another type (a datetime, an address) are never stored as they came.
PARSED = {"date-time", "date", "ipv4", "ipv6", "ip"}


def test_every_request_string_is_bounded(client):
    """Each string a request can carry has a maximum length (or is one of a few values), so it fits its column."""
    spec = _spec(client)
    unbounded = []
    for method, path, op, params in _operations(spec):
        for p in params:
            if p["in"] == "query" and p["schema"].get("type") == "string" and \
                    "maxLength" not in p["schema"] and "enum" not in p["schema"]:
                unbounded.append(f"{method} {path} ?{p['name']}")
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        for where, schema in _strings(spec, body) if body else ():
            if "maxLength" not in schema and "enum" not in schema and schema.get("format") not in PARSED:
                unbounded.append(f"{method} {path} {'.'.join(map(str, where))}")
    assert unbounded == []


def test_text_fields_reject_nul_surrogates_and_overlong_values(client, sweep_headers):
    """Every string of every JSON body: NUL, a lone surrogate, one character over its length: 422 naming it."""
    spec = _spec(client)
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    failures, checked = [], 0
    for method, path, op, params in _operations(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if not body:
            continue
        url = _fill(path, params)
        for where, schema in _strings(spec, body):
            for label, value in _bad_values(schema):
                r = _send(client, method, url, sweep_headers, _body_at(where, value))
                checked += 1
                if r.status_code == 413 and len(value) > limit:
                    continue  # the body limit refused it first
                if r.status_code != 422 or not _named(r.json.get("errors", {}), "json", where):
                    failures.append((method, path, where, label, r.status_code, r.json))
    assert failures == []
    assert checked > 100


def test_query_strings_reject_nul_and_overlong_values(client, sweep_headers):
    spec = _spec(client)
    failures = []
    for method, path, _, params in _operations(spec):
        url = _fill(path, params)
        for p in params:
            if p["in"] != "query" or p["schema"].get("type") != "string" or "enum" in p["schema"]:
                continue
            cases = [("nul", quote(NUL), 422), ("surrogate", SURROGATE_IN_URL, None)]
            if "maxLength" in p["schema"]:
                cases.append(("too long", "a" * (p["schema"]["maxLength"] + 1), 422))
            for label, value, expected in cases:
                r = _send(client, method, f"{url}?{p['name']}={value}", sweep_headers)
                named = r.status_code == 422 and _named(r.json.get("errors", {}), "query", (p["name"],))
                if r.status_code >= 500 or (expected and not named):
                    failures.append((method, path, p["name"], label, r.status_code, r.json))
    assert failures == []


@pytest.mark.parametrize("value", [quote(NUL), "a%01b", quote("a\x7fb")])
def test_control_characters_in_path_parameters_are_404(client, sweep_headers, value):
    """A path parameter with a control character names nothing: 404 from routing, on every endpoint."""
    failures = []
    for method, path, _, params in _operations(_spec(client)):
        if any(p["in"] == "path" for p in params):
            r = _send(client, method, _fill(path, params, value), sweep_headers)
            if r.status_code != 404 or r.json.get("code") != 404:
                failures.append((method, path, r.status_code))
    assert failures == []


def test_surrogates_in_path_parameters_never_500(client, sweep_headers):
    failures = []
    for method, path, _, params in _operations(_spec(client)):
        if any(p["in"] == "path" for p in params):
            r = _send(client, method, _fill(path, params, SURROGATE_IN_URL), sweep_headers)
            if r.status_code >= 500:
                failures.append((method, path, r.status_code))
    assert failures == []


# --- the cases of the report, each with an otherwise valid request that reaches the database ----------------

POLICY = {"key": "privacy", "title": "Privacy", "purposes": [{"key": "core", "description": "Run the service"}]}


def _errors(r: Any) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.json)
    return r.json["errors"]["json"]


def test_policy_title_with_nul(client, sweep_headers):
    r = client.post("/v1/policies", json={**POLICY, "title": NUL}, headers=sweep_headers)
    assert r.status_code == 422 and "title" in _errors(r)
    assert client.get("/v1/policies", headers=sweep_headers).json == []


def test_purpose_retention_longer_than_its_column(client, sweep_headers):
    purpose = {**POLICY["purposes"][0], "retention": "P" + "1" * 50 + "D"}  # a valid duration, 52 characters
    r = client.post("/v1/policies", json={**POLICY, "purposes": [purpose]}, headers=sweep_headers)
    assert r.status_code == 422 and "retention" in _errors(r)["purposes"]["0"]


def test_subject_id_with_a_lone_surrogate(client, sweep_headers):
    assert client.post("/v1/policies", json=POLICY, headers=sweep_headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True},
                       headers=sweep_headers).status_code == 201
    body = {"subject_id": SURROGATE, "policy": "privacy", "version": "1", "purposes": {"core": True},
            "channel": "web", "locale": "en"}
    r = _send(client, "post", "/v1/consents", sweep_headers, body)
    assert r.status_code == 422 and "subject_id" in _errors(r)
    r = _send(client, "post", "/v1/consents/withdraw", sweep_headers, {"subject_id": SURROGATE, "policy": "privacy"})
    assert r.status_code == 422 and "subject_id" in _errors(r)
    r = _send(client, "post", "/v1/consents", sweep_headers, {**body, "subject_id": "u1", "purposes": {NUL: True}})
    assert r.status_code == 422 and "purposes" in _errors(r)


@pytest.mark.parametrize("field", ["store", "category", "reason"])
def test_hold_fields_with_nul(client, sweep_headers, field):
    body = {"store": "cloud-photos", "category": "contact", "reason": "litigation", field: NUL}
    r = client.post("/v1/holds", json=body, headers=sweep_headers)
    assert r.status_code == 422 and field in _errors(r)
    assert client.get("/v1/holds", headers=sweep_headers).json == []


def test_request_subject_with_a_lone_surrogate(client, sweep_headers):
    body = {"type": "access", "subject": {"user_id": SURROGATE}, "jurisdiction": "GDPR", "verified": True}
    r = _send(client, "post", "/v1/requests", sweep_headers, body)
    assert r.status_code == 422 and "user_id" in _errors(r)["subject"]


def test_retention_basis_with_nul_and_durations_longer_than_their_column(client, sweep_headers):
    body = {"store": "cloud-photos", "category": "device_log", "retain_for": "P90D", "basis": "no longer needed"}
    r = client.post("/v1/retention/policies", json={**body, "basis": NUL}, headers=sweep_headers)
    assert r.status_code == 422 and "basis" in _errors(r)
    long_duration = "P" + "1" * 50 + "D"
    r = client.post("/v1/retention/policies", json={**body, "retain_for": long_duration}, headers=sweep_headers)
    assert r.status_code == 422 and "retain_for" in _errors(r)
    r = client.post("/v1/retention/policies", json=body, headers=sweep_headers)
    assert r.status_code == 201, r.json
    key = r.json["key"]
    r = client.patch(f"/v1/retention/policies/{key}", json={"retain_for": long_duration}, headers=sweep_headers)
    assert r.status_code == 422 and "retain_for" in _errors(r)
    r = client.patch(f"/v1/retention/policies/{key}", json={"basis": NUL}, headers=sweep_headers)
    assert r.status_code == 422 and "basis" in _errors(r)
    r = client.get(f"/v1/retention/policies?store={quote(NUL)}", headers=sweep_headers)
    assert r.status_code == 422 and "store" in r.json["errors"]["query"]
    assert client.get(f"/v1/retention/policies/{key}", headers=sweep_headers).json["retain_for"] == "P90D"


# --- page numbers ------------------------------------------------------------------------------------------

def _paginated(client) -> list[str]:
    return [path for method, path, _, params in _operations(_spec(client))
            if method == "get" and any(p["name"] == "page" for p in params)]


def test_list_endpoints_are_paginated(client):
    paths = _paginated(client)
    for path in ("/v1/requests", "/v1/retention/runs", "/v1/holds", "/v1/policies", "/v1/retention/policies"):
        assert path in paths


@pytest.mark.parametrize("param, value", [("page", 2**63), ("page", 2**64 + 5), ("page", MAX_PAGE + 1),
                                          ("page_size", 2**63), ("page", 0), ("page", "x")])
def test_page_numbers_out_of_range_are_422_naming_the_field(client, sweep_headers, param, value):
    failures = []
    for path in _paginated(client):
        url = _fill(path, [{"in": "path", "name": n} for n in ("subject_id",)])
        r = client.get(f"{url}?{param}={value}", headers=sweep_headers)
        if r.status_code != 422 or param not in r.json["errors"]["query"] or param not in r.json["message"]:
            failures.append((path, r.status_code, r.json))
    assert failures == []


def test_the_last_allowed_page_is_empty_not_an_error(client, sweep_headers):
    for path in _paginated(client):
        if "{" in path:
            continue  # a subject with no consent is a 404 whatever the page
        r = client.get(f"{path}?page={MAX_PAGE}&page_size=100", headers=sweep_headers)
        assert r.status_code == 200 and r.json == [], (path, r.status_code, r.json)


def test_holds_policies_and_retention_policies_pages(client, sweep_headers):
    for i in range(3):
        assert client.post("/v1/holds", json={"store": "cloud-photos", "reason": f"case {i}"},
                           headers=sweep_headers).status_code == 201
        assert client.post("/v1/policies", json={**POLICY, "key": f"p{i}"}, headers=sweep_headers).status_code == 201
    for category in ("contact", "photos", "device_log"):
        assert client.post("/v1/retention/policies", headers=sweep_headers, json={
            "store": "cloud-photos", "category": category, "retain_for": "P1Y", "basis": "b"}).status_code == 201
    for path in ("/v1/holds", "/v1/policies", "/v1/retention/policies"):
        first = client.get(f"{path}?page_size=2", headers=sweep_headers)
        second = client.get(f"{path}?page_size=2&page=2", headers=sweep_headers)
        assert first.status_code == second.status_code == 200
        assert len(first.json) == 2 and len(second.json) == 1, path
        assert json.loads(first.headers["X-Pagination"])["total"] == 3
        assert json.loads(second.headers["X-Pagination"])["page"] == 2
        seen = [item.get("id", item.get("key")) for item in first.json + second.json]
        assert len(set(seen)) == 3


# --- the JSON itself ---------------------------------------------------------------------------------------

def _raw(client, headers: dict[str, str], text: str, path: str = "/v1/policies") -> Any:
    return client.post(path, data=text, headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 10_000])
def test_json_nested_too_deep_is_400_naming_the_limit(client, sweep_headers, depth):
    r = _raw(client, sweep_headers, "[" * depth + "]" * depth)
    assert r.status_code == 400
    assert "nest" in r.json["message"] and str(MAX_JSON_DEPTH) in r.json["message"]
    r = _raw(client, sweep_headers, '{"a":' * depth + "1" + "}" * depth)
    assert r.status_code == 400 and str(MAX_JSON_DEPTH) in r.json["message"]


def test_json_nested_to_the_limit_reaches_validation(client, sweep_headers):
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    r = _raw(client, sweep_headers, '{"key": "p", "title": "t", "purposes": ' + nested + "}")
    assert r.status_code == 422 and "purposes" in r.json["errors"]["json"]


@pytest.mark.parametrize("digits", [4301, 50_000])
def test_huge_integers_are_400(client, sweep_headers, digits):
    r = _raw(client, sweep_headers, '{"key": "p", "title": ' + "7" * digits + "}")
    assert r.status_code == 400 and "integer" in r.json["message"]
    r = _raw(client, sweep_headers, '{"type": "access", "details": {"n": -' + "7" * digits + "}}", "/v1/requests")
    assert r.status_code == 400 and "integer" in r.json["message"]


@pytest.mark.parametrize("text", ['{"key": NaN}', '{"key": Infinity}', '{"key": 1e999}', "{not json",
                                  '{"key": "\\ud800', b'{"key": "\xff"}'])
def test_other_malformed_json_is_400(client, sweep_headers, text):
    r = _raw(client, sweep_headers, text)
    assert r.status_code == 400 and r.json["message"]
