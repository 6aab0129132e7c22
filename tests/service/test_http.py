"""HTTP behaviour shared by every endpoint: errors, body limits, the OpenAPI document."""


def test_body_over_limit_is_413(client, make_key):
    headers = make_key("app-a", "admin")
    body = {"key": "p", "title": "x" * (70 * 1024), "purposes": []}
    r = client.post("/v1/policies", json=body, headers=headers)
    assert r.status_code == 413
    assert r.json["code"] == 413 and r.json["message"]


def test_malformed_json_is_a_clear_400_or_422(client, make_key):
    headers = {**make_key("app-a", "admin"), "Content-Type": "application/json"}
    r = client.post("/v1/policies", data="{not json", headers=headers)
    assert r.status_code in (400, 422) and r.json["message"]


def test_unknown_route_is_json_404(client):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json["code"] == 404


def test_openapi_document_and_docs(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert "/v1/consents/status" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    op = spec["paths"]["/v1/consents"]["post"]
    assert op["security"] == [{"bearerAuth": ["consent:write"]}]
    assert client.get("/docs").status_code == 200
