"""GET /v1/stores and /v1/datamap, store health in /readyz, and `flask demo seed`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def test_stores_lists_each_store_with_its_health(client, make_key):
    r = client.get("/v1/stores", headers=make_key("ops", "platform:read"))
    assert r.status_code == 200
    by_name = {s["name"]: s for s in r.json}
    assert by_name["cloud-photos"] == {
        "name": "cloud-photos", "plugin": "sql",
        "categories": ["contact", "orders", "device_log", "photos", "location"],
        "identity_types": ["user_id", "email", "phone"], "capabilities": ["subjects"], "health": "ok"}
    assert by_name["uploads"]["categories"] == ["photos", "avatars"]
    assert by_name["uploads"]["capabilities"] == ["subjects"]


def test_stores_and_datamap_need_platform_read(client, make_key):
    for path in ("/v1/stores", "/v1/datamap"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=make_key("app-a", "consent:read")).status_code == 403
        assert client.get(path, headers=make_key("app-a", "admin,dsar:manage")).status_code == 403
        assert client.get(path, headers=make_key("root", "platform:read")).status_code == 200


def test_datamap_shows_where_each_category_lives(client, make_key):
    r = client.get("/v1/datamap", headers=make_key("ops", "platform:read"))
    assert r.status_code == 200
    places = {c["category"]: c["locations"] for c in r.json["categories"]}
    assert places["photos"] == [
        {"store": "cloud-photos", "plugin": "sql", "capabilities": ["subjects"], "retention": None},
        {"store": "uploads", "plugin": "files", "capabilities": ["subjects"], "retention": None}]
    assert [loc["store"] for loc in places["orders"]] == ["cloud-photos"]
    assert set(places) == {"contact", "orders", "device_log", "photos", "location", "avatars"}


def test_readyz_reports_each_store(client, app):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json["checks"]["store:cloud-photos"] == "ok" and r.json["checks"]["store:uploads"] == "ok"
    uploads = app.extensions["stores"].get("uploads")
    uploads.root.rename(uploads.root.with_name("moved"))
    try:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json["checks"]["store:uploads"].startswith("error: ")
    finally:
        uploads.root.with_name("moved").rename(uploads.root)


def test_demo_seed_fills_the_estate_deterministically(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed", "--people", "6", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "seeded 6 people: 6 users" in result.output
    stores = app.extensions["stores"]
    first = list(stores.get("cloud-photos").access({"user_id": "1"}))
    runner.invoke(args=["demo", "seed", "--people", "6", "--seed", "7"])
    again = list(stores.get("cloud-photos").access({"user_id": "1"}))
    strip = [{k: v for k, v in r.fields.items() if not k.endswith("_at")} for r in first]
    assert strip == [{k: v for k, v in r.fields.items() if not k.endswith("_at")} for r in again]
    assert len(list(stores.get("cloud-photos").access({"user_id": "7"}))) == 0
    sql = stores.get("cloud-photos")
    for category in ("device_log", "orders"):  # some old enough to expire, some recent
        total = sum(sql.expire(category, datetime.now(UTC) + timedelta(days=1), dry_run=True))
        assert 0 < sum(sql.expire(category, datetime.now(UTC) - timedelta(days=90), dry_run=True)) < total
