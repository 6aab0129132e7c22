"""The ledger check detects altered, deleted and reordered rows, through the CLI an auditor runs."""

import pytest
from sqlalchemy import text


@pytest.fixture
def ledger(client, headers, consent):
    ids = [consent("user-1").json["id"], consent("user-1", analytics=True).json["id"]]
    client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy"}, headers=headers)
    consent("user-2")
    return ids


def verify(app):
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    return result.exit_code, result.output


def execute(app, sql, **params):
    with app.extensions["db"].engine.begin() as conn:
        conn.execute(text(sql), params)


def test_intact_ledger_passes(app, ledger):
    code, output = verify(app)
    assert code == 0, output
    assert "intact" in output


def test_altered_row_is_detected(app, ledger):
    execute(app, "UPDATE consent_events SET channel = 'web' WHERE id = :id", id=ledger[1])
    code, output = verify(app)
    assert code == 1
    assert f"event {ledger[1]}" in output and "altered" in output


def test_altered_purposes_are_detected(app, ledger):
    execute(app, "UPDATE consent_events SET purposes = :p WHERE id = :id",
            p='{"ads":true,"analytics":true,"core":true}', id=ledger[0])
    code, output = verify(app)
    assert code == 1 and ledger[0] in output


def test_deleted_row_is_detected(app, ledger):
    execute(app, "DELETE FROM consent_events WHERE id = :id", id=ledger[0])
    code, output = verify(app)
    assert code == 1
    assert "removed" in output


def test_deleted_tail_row_is_detected_through_the_audit_trail(app, client, headers, ledger, consent):
    last = consent("user-3").json["id"]
    execute(app, "DELETE FROM consent_events WHERE id = :id", id=last)
    code, output = verify(app)
    assert code == 1 and last in output


def test_reordered_rows_are_detected(app, ledger):
    # Swap the positions of the first two events of the chain.
    execute(app, "UPDATE consent_events SET seq = 100 WHERE id = :id", id=ledger[0])
    execute(app, "UPDATE consent_events SET seq = 1 WHERE id = :id", id=ledger[1])
    execute(app, "UPDATE consent_events SET seq = 2 WHERE id = :id", id=ledger[0])
    code, output = verify(app)
    assert code == 1
    assert "BROKEN" in output


def test_reordered_timestamps_are_detected(app, ledger):
    execute(app, "UPDATE consent_events SET created_at = :t WHERE id = :id",
            t="2020-01-01 00:00:00+00:00", id=ledger[1])
    assert verify(app)[0] == 1
