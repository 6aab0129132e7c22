"""The HTTP contract every /v1 operation keeps, whichever domain it belongs to: 405 with Allow, 415 for a body
that is not JSON, repeated keys refused, control characters refused in identifiers, X-Pagination documented as
the JSON it is, and the API's response headers. Each test walks the OpenAPI document, so new domains are covered."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest

from service.api import API_HEADERS
from tests.service.test_input import _fill, _operations, _resolve, _spec

METHODS = ("get", "post", "put", "patch", "delete")


def _json_bodies(spec: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    return [(method, path, params) for method, path, op, params in _operations(spec)
            if "application/json" in op.get("requestBody", {}).get("content", {})]


def test_405_names_the_allowed_methods(client, sweep_headers):
    spec = _spec(client)
    failures, checked = [], 0
    for path, item in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        allowed = {m for m in item if m in METHODS}
        params = [p for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]
        url = _fill(path, [*item.get("parameters", []), *params])
        for method in sorted(set(METHODS) - allowed):
            r = client.open(url, method=method.upper(), headers=sweep_headers)
            checked += 1
            named = {m.strip().lower() for m in r.headers.get("Allow", "").split(",")}
            if r.status_code != 405 or not allowed <= named or r.json["code"] != 405:
                failures.append((method, path, r.status_code, r.headers.get("Allow")))
    assert failures == [] and checked > 20


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(client, sweep_headers, content_type):
    spec = _spec(client)
    failures = []
    for method, path, params in _json_bodies(spec):
        headers = dict(sweep_headers)
        if content_type:
            headers["Content-Type"] = content_type
        r = client.open(_fill(path, params), method=method.upper(), headers=headers, data='{"a": 1}')
        if r.status_code != 415 or "application/json" not in r.json["message"]:
            failures.append((method, path, r.status_code, r.json))
    assert failures == []


def test_json_with_a_charset_is_json(client, sweep_headers):
    r = client.post("/v1/policies", headers={**sweep_headers, "Content-Type": "application/json; charset=utf-8"},
                    data=json.dumps({"key": "p", "title": "t", "purposes": [{"key": "c", "description": "d"}]}))
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("text, key", [
    ('{"key": "p", "key": "q"}', '"key"'),
    ('{"title": "t", "purposes": [{"key": "c", "description": "d", "description": "e"}]}', '"description"'),
    ('{"a\\u0000": 1, "a\\u0000": 2}', '"a\\u0000"'),
])
def test_repeated_keys_are_400_naming_the_key(client, sweep_headers, text, key):
    failures = []
    for method, path, params in _json_bodies(_spec(client)):
        r = client.open(_fill(path, params), method=method.upper(), data=text,
                        headers={**sweep_headers, "Content-Type": "application/json"})
        if r.status_code != 400 or key not in r.json["message"] or "more than once" not in r.json["message"]:
            failures.append((method, path, r.status_code, r.json))
    assert failures == []
    assert client.get("/v1/policies", headers=sweep_headers).json == []


IDENTIFIER_VALUES = ["a\x01b", "a\x1b[31mb", "a\x7fb", "a\nb", "a\tb", "a\x00b"]


def _identifiers(spec: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...] = ()):
    """(path, schema) of every string field of a body named like an identifier (`id`, `*_id`, `key`)."""
    schema = _resolve(spec, schema)
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop or "allOf" in prop or prop.get("type") == "object":
            yield from _identifiers(spec, prop, (*path, name))
        elif prop.get("type") == "string" and (name in ("id", "key") or name.endswith("_id")):
            yield (*path, name), prop


@pytest.mark.parametrize("value", IDENTIFIER_VALUES)
def test_control_characters_in_identifiers_are_422_naming_the_field(client, sweep_headers, value):
    """subject_id, user_id, keys...: in a body or a query string, a control character is refused by name."""
    spec = _spec(client)
    failures, checked = [], 0
    for method, path, op, params in _operations(spec):
        url = _fill(path, params)
        for p in params:
            if p["in"] == "query" and (p["name"] in ("id", "key") or p["name"].endswith("_id")):
                r = client.open(f"{url}?{p['name']}={quote(value)}", method=method.upper(), headers=sweep_headers)
                checked += 1
                if r.status_code != 422 or p["name"] not in r.json["errors"]["query"]:
                    failures.append((method, path, p["name"], r.status_code))
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        for where, _ in _identifiers(spec, body) if body else ():
            payload: Any = value
            for step in reversed(where):
                payload = {step: payload}
            r = client.open(url, method=method.upper(), headers=sweep_headers, json=payload)
            checked += 1
            node = r.json.get("errors", {}).get("json", {}) if r.status_code == 422 else {}
            for step in where:
                node = node.get(step) if isinstance(node, dict) else None
            if not node:
                failures.append((method, path, ".".join(where), r.status_code, r.json))
    assert failures == []
    assert checked >= 8


def test_x_pagination_is_documented_as_a_json_document(client, sweep_headers):
    spec = _spec(client)
    header = spec["components"]["headers"]["PAGINATION"]
    assert "schema" not in header
    schema = header["content"]["application/json"]["schema"]
    metadata = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    client.post("/v1/policies", headers=sweep_headers,
                json={"key": "p", "title": "t", "purposes": [{"key": "c", "description": "d"}]})
    value = json.loads(client.get("/v1/policies", headers=sweep_headers).headers["X-Pagination"])
    assert set(value) <= set(metadata["properties"]) and value["page"] == value["total"] == 1


def test_every_api_answer_carries_the_api_headers(client, sweep_headers):
    """200s, 201s, 4xx and 405: nothing under /v1 is sniffed or cached."""
    answers = [
        client.get("/v1/policies", headers=sweep_headers),
        client.post("/v1/policies", headers=sweep_headers,
                    json={"key": "p", "title": "t", "purposes": [{"key": "c", "description": "d"}]}),
        client.get("/v1/policies"),
        client.get("/v1/policies/nothing", headers=sweep_headers),
        client.get("/v1/nothing-here"),
        client.delete("/v1/policies", headers=sweep_headers),
        client.post("/v1/policies", headers=sweep_headers, json={}),
        client.get("/v1/consents/status?subject_id=u&policy=p", headers=sweep_headers),
    ]
    assert len({r.status_code for r in answers}) >= 5
    for r in answers:
        for name, value in API_HEADERS:
            assert r.headers.get(name) == value, (r.status_code, r.request.path, name)
    # What may be cached says so itself.
    assert client.get("/.well-known/jwks.json").headers["Cache-Control"] != "no-store"


def test_every_operation_declares_the_errors_it_can_answer(client):
    """With the error schema: 401/403 for a key, 404 for a path parameter, 400/413/415/422 for a body, 503 always."""
    from service.api import error_statuses

    spec = _spec(client)
    error = {"$ref": "#/components/schemas/Error"}
    assert set(spec["components"]["schemas"]["Error"]["properties"]) >= {"code", "message", "errors", "detail"}
    missing, declared = [], 0
    for method, path, op, params in _operations(spec):
        expected = {str(s) for s in error_statuses(op, params)}
        assert "503" in expected
        if op.get("security"):
            assert {"401", "403"} <= expected
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert {"400", "413", "415", "422"} <= expected
        for status in expected:
            response = op["responses"].get(status)
            if response is None:
                missing.append((method, path, status))
                continue
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            schema = response["content"]["application/json"]["schema"]  # an operation's own, e.g. its 429
            assert schema == error, (method, path, status)
            declared += 1
    assert missing == [] and declared > 100


def test_the_declared_errors_are_answered(client, sweep_headers):
    """A sample of each declared error, as a client meets it."""
    assert client.get("/v1/policies").status_code == 401
    assert client.get("/v1/policies", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/policies/none", headers=sweep_headers).status_code == 404
    assert client.post("/v1/policies", data="{", headers={**sweep_headers, "Content-Type": "application/json"}
                       ).status_code == 400
    assert client.post("/v1/policies", data="x" * (client.application.config["MAX_CONTENT_LENGTH"] + 1),
                       headers={**sweep_headers, "Content-Type": "application/json"}).status_code == 413


def test_every_integer_query_parameter_is_bounded_in_the_document(client):
    """page (up to service.api.MAX_PAGE), page_size and any other: out of range is a 422 naming it, and the
    document says where the range ends, so a client or a fuzzer never sends what will be refused."""
    unbounded = [(method, path, p["name"]) for method, path, _, params in _operations(_spec(client))
                 for p in params if p["in"] == "query" and p["schema"].get("type") == "integer"
                 and ("minimum" not in p["schema"] or "maximum" not in p["schema"])]
    assert unbounded == []


def test_text_fields_document_that_control_characters_are_refused(client):
    spec = _spec(client)
    title = spec["components"]["schemas"]["PolicyIn"]["properties"]["title"]
    reason = spec["components"]["schemas"]["ReasonIn"]["properties"]["reason"]
    assert re.fullmatch(title["pattern"], "Privacy") and not re.fullmatch(title["pattern"], "a\x01b")
    assert re.fullmatch(reason["pattern"], "line\nline") and not re.fullmatch(reason["pattern"], "a\x00b")


def _links(spec: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    return [(method, path, status, name, definition) for method, path, op, _ in _operations(spec)
            for status, response in op["responses"].items() if "links" in response
            for name, definition in response["links"].items()]


def _target(spec: dict[str, Any], ref: str) -> tuple[str, str, dict[str, Any], list[dict[str, Any]]]:
    path, method = ref.removeprefix("#/paths/").rsplit("/", 1)
    path = path.replace("~1", "/").replace("~0", "~")
    return method, path, spec["paths"][path][method], [*spec["paths"][path].get("parameters", []),
                                                        *spec["paths"][path][method].get("parameters", [])]


def test_every_link_names_an_operation_and_its_parameters(client):
    """A link's target exists and has each parameter it fills, and each body field it fills (a link to nothing
    makes schemathesis' stateful phase fail before it starts)."""
    spec = _spec(client)
    links = _links(spec)
    sources = {(m, p): params for m, p, _, params in _operations(spec)}
    for method, path, status, name, definition in links:
        _, _, target, params = _target(spec, definition["operationRef"])
        for key, expression in definition.get("parameters", {}).items():
            where, parameter = key.split(".", 1)
            assert any(p["in"] == where and p["name"] == parameter for p in params), (method, path, name, key)
            if expression.startswith("$request.path."):  # the source has that path parameter
                assert any(p["in"] == "path" and p["name"] == expression.rsplit(".", 1)[1]
                           for p in sources[method, path]), (method, path, name, expression)
        if "requestBody" in definition:
            body = _resolve(spec, target["requestBody"]["content"]["application/json"]["schema"])
            assert set(definition["requestBody"]) <= set(body["properties"]), (method, path, name)
    linked = {_target(spec, d["operationRef"])[:2] for *_, d in links}
    assert {("get", "/v1/consents/status"), ("get", "/v1/subjects/{subject_id}/consents"),
            ("post", "/v1/consents/withdraw"), ("post", "/v1/consents"), ("post", "/v1/retention/runs"),
            ("get", "/v1/retention/runs"), ("get", "/v1/retention/runs/{run_id}"),
            ("get", "/v1/requests/{request_id}"), ("get", "/v1/incidents/{incident_id}"),
            ("get", "/v1/incidents/{incident_id}/assessment-runs/{run_id}")} <= linked


def _evaluate(expression: Any, request: dict[str, Any], response: Any) -> Any:
    """The runtime expressions the links use: $response.body#/pointer, $request.body#/pointer, $request.path.x,
    $request.query.x."""
    if not isinstance(expression, str) or not expression.startswith("$"):
        return expression
    for where in ("path", "query"):
        if expression.startswith(f"$request.{where}."):
            return request[where][expression.removeprefix(f"$request.{where}.")]
    source, pointer = expression.split("#", 1)
    value = response if source == "$response.body" else request["body"]
    for part in pointer.strip("/").split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def test_following_the_consent_links_reaches_real_records(client, sweep_headers):
    """From a policy to its version, a consent, then the subject's status, history and withdrawal, each request
    built only from the links' expressions: every step answers 2xx, as schemathesis' stateful phase needs."""
    spec = _spec(client)
    by_source = {(m, p, s): {n: d for mm, pp, ss, n, d in _links(spec) if (mm, pp, ss) == (m, p, s)}
                 for m, p, s, *_ in _links(spec)}

    def call(method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        r = client.open(path, method=method.upper(), json=body, query_string=query, headers=sweep_headers)
        assert r.status_code < 300, (method, path, r.status_code, r.json)
        return r.json

    def follow(source: tuple[str, str, str], name: str, request: dict[str, Any], response: Any,
               body: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
        definition = by_source[source][name]
        method, path, _, _ = _target(spec, definition["operationRef"])
        query, path_values = dict(query or {}), {}
        for key, expression in definition.get("parameters", {}).items():
            where, parameter = key.split(".", 1)
            (query if where == "query" else path_values)[parameter] = _evaluate(expression, request, response)
        url = path
        for parameter, value in path_values.items():
            url = url.replace("{" + parameter + "}", quote(str(value), safe=""))
        if "requestBody" in definition or body is not None:
            body = {**(body or {}), **{k: _evaluate(v, request, response)
                                       for k, v in definition.get("requestBody", {}).items()}}
        return {"body": body, "path": path_values, "query": query}, call(method, url, body, query)

    policy = {"key": "linked", "title": "Linked", "purposes": [{"key": "news", "description": "News"}]}
    call("post", "/v1/policies", policy)
    version_request = {"body": {"version": "1", "text": "Terms", "material": True}, "path": {"key": "linked"}}
    version = call("post", "/v1/policies/linked/versions", version_request["body"])
    consent_request, consent = follow(
        ("post", "/v1/policies/{key}/versions", "201"), "record", version_request, version,
        {"subject_id": "user-1", "purposes": {"news": True}, "channel": "web", "locale": "en"})
    assert consent["policy"] == "linked" and consent["version"] == "1"
    consent_source = ("post", "/v1/consents", "201")
    _, status = follow(consent_source, "status", consent_request, consent)
    assert status["consent_required"] is False and status["purposes"] == {"news": True}
    _, history = follow(consent_source, "history", consent_request, consent)
    assert [item["id"] for item in history] == [consent["id"]]
    withdraw_request, withdrawn = follow(consent_source, "withdraw", consent_request, consent)
    assert withdrawn["purposes"] == {"news": False}
    _, history = follow(("post", "/v1/consents/withdraw", "200"), "history", withdraw_request, withdrawn)
    assert [item["kind"] for item in history] == ["withdrawal", "consent"]
    fetched = call("get", "/v1/policies/linked")
    _, again = follow(("get", "/v1/policies/{key}", "200"), "record", {"body": None, "path": {"key": "linked"}},
                      fetched, {"subject_id": "user-2", "purposes": {}, "channel": "web", "locale": "en"})
    assert again["version"] == "1"
    # A subject the app has not asked yet: its status, then a consent recorded from that answer alone.
    status_request, status = follow(("get", "/v1/policies/{key}", "200"), "status",
                                    {"body": None, "path": {"key": "linked"}}, fetched, query={"subject_id": "user-3"})
    assert status["consent_required"] is True and status["purposes"] == {}
    _, recorded = follow(("get", "/v1/consents/status", "200"), "record", status_request, status,
                         {"channel": "app", "locale": "en"})
    assert recorded["policy"] == "linked" and recorded["purposes"] == {"news": False}
