def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_readyz_checks_database(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json["checks"]["database"] == "ok" and r.json["status"] == "ready" and r.json["down"] == []
