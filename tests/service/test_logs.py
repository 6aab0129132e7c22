"""Logs name routes and key ids, never subject ids, query values or keys."""

import logging


def test_access_log_has_no_personal_data(client, make_key, caplog):
    headers = make_key("app-a", "consent:read")
    with caplog.at_level(logging.INFO):
        client.get("/v1/consents/status?subject_id=alice@example.com&policy=privacy", headers=headers)
        client.get("/v1/subjects/alice@example.com/consents", headers=headers)
    lines = [r.getMessage() for r in caplog.records if r.name == "privacy.access"]
    assert any("GET /v1/consents/status 404" in line for line in lines)
    assert any("/v1/subjects/<subject_id>/consents" in line for line in lines)
    text = caplog.text
    assert "alice" not in text and headers["Authorization"].split()[1] not in text


def test_control_characters_reach_the_log_escaped(client, caplog):
    with caplog.at_level(logging.INFO):
        r = client.open("/healthz", method="G\x00T\nforged line", headers={"X-Probe": "a\x00b\x1b[31m"})
        assert r.status_code == 405
        assert client.get("/healthz", headers={"X-Probe": "a\x00b\x1b[31m"}).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "privacy.access"]
    assert lines[0].startswith("G\\x00T\\nFORGED LINE <unmatched> 405 "), lines
    assert lines[1].startswith("GET /healthz 200 ")
    assert all(line.isprintable() for line in lines)
