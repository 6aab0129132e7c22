"""Signed checkpoints and incremental verification: what an incremental run recomputes, what it still catches
before the checkpoint (anything that moves an event's stored place, even a consistently re-hashed chain), and the
one thing it does not (a content edit that leaves the stored hash as it was), which the full run catches."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from consent import history as consent_service
from consent import verifications
from consent.models import LedgerVerification
from tests.consent.conftest import LEDGER_SUBJECTS
from tests.consent.tamper import Row, execute, rewrite_chain, rows

# No lag: every event made before a run is covered by its checkpoint. Small segments locate a change closely.
OPTIONS = verifications.Options(batch=7, lag=timedelta(0), segment=20)


def check(app, incremental: bool = False) -> tuple[LedgerVerification, list[str]]:
    # A run covers events made before the millisecond it started (ids are UUIDv7, millisecond time): an event
    # from that same millisecond is left to the next run, so let the clock move past the last one made.
    time.sleep(0.002)
    found: list[str] = []
    row = verifications.run(app.extensions["db"], app.extensions["keys"], app.config["SETTINGS"], trigger="cli",
                            incremental=incremental, options=OPTIONS, on_break=lambda b: found.append(str(b)))
    assert row is not None
    return row, found


def middle(ledger: list[Row]) -> Row:
    """An event with events of its chain on both sides, two thirds into the ledger."""
    for row in ledger[2 * len(ledger) // 3:]:
        chain = [r for r in ledger if r.subject == row.subject]
        if chain[0] != row and chain[-1] != row:
            return row
    raise AssertionError("no mid-chain event")


@pytest.fixture
def checkpointed(app, long_ledger) -> LedgerVerification:
    """The long ledger, verified in full: its intact run's checkpoint covers every event."""
    row, found = check(app)
    assert row.status == "intact" and not found
    return row


def test_an_intact_full_run_records_a_checkpoint_signed_with_the_receipts_key(app, client, checkpointed):
    total = len(rows(app))
    assert (checkpointed.mode, checkpointed.events_checked, checkpointed.chains_checked) == ("full", total,
                                                                                          LEDGER_SUBJECTS)
    assert checkpointed.events_covered == total and checkpointed.breaks == 0
    claims = app.extensions["keys"].signer.verify(checkpointed.checkpoint)
    assert claims["verification"] == checkpointed.id and claims["events"] == total
    assert len(claims["segments"]) == -(-total // OPTIONS.segment)
    # Anyone can check it against the published keys, as a receipt.
    from joserfc import jws
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    assert jws.deserialize_compact(checkpointed.checkpoint, keys, algorithms=["EdDSA"]).payload


def test_incremental_run_recomputes_only_the_chains_that_changed(app, consent, checkpointed):
    before = rows(app)
    for subject in ("subject-3", "subject-40", "someone-new"):
        assert consent(subject).status_code == 201
    after = rows(app)
    changed = {r.subject for r in after} - {r.subject for r in before} | {
        r.subject for r in after if r not in before}
    row, found = check(app, incremental=True)
    assert row.status == "intact", found
    assert (row.mode, row.base_id, row.chains_checked) == ("incremental", checkpointed.id, 3)
    assert row.events_checked == len([r for r in after if r.subject in changed])
    assert row.events_covered == len(after)


def test_incremental_run_names_an_altered_new_event(app, consent, checkpointed):
    new = consent("subject-7").json["id"]
    execute(app, "UPDATE consent_events SET locale = 'fr-FR' WHERE id = :id", id=new)
    row, _ = check(app, incremental=True)
    assert (row.status, row.first_break) == ("broken", new)
    assert "altered" in row.first_break_problem and row.checkpoint is None


def test_incremental_run_names_an_event_deleted_before_the_checkpoint(app, checkpointed):
    ledger = rows(app)
    target = middle(ledger)
    successor = next(r for r in ledger if r.subject == target.subject and r.seq == target.seq + 1)
    execute(app, "DELETE FROM consent_events WHERE id = :id", id=target.id)
    row, found = check(app, incremental=True)
    assert row.status == "broken" and row.mode == "incremental"
    assert any(f"event {successor.id}" in f and "removed" in f for f in found)
    assert any(f"event {target.id}" in f and "missing from the ledger" in f for f in found)
    assert any("changed" in f and "checkpoint of verification" in f for f in found)
    assert row.chains_checked < LEDGER_SUBJECTS  # only the changed segment's chains were re-read


def test_incremental_run_names_events_reordered_before_the_checkpoint(app, checkpointed):
    ledger = rows(app)
    target = middle(ledger)
    successor = next(r for r in ledger if r.subject == target.subject and r.seq == target.seq + 1)
    execute(app, "UPDATE consent_events SET seq = -1 WHERE id = :id", id=target.id)
    execute(app, "UPDATE consent_events SET seq = :seq WHERE id = :id", seq=target.seq, id=successor.id)
    execute(app, "UPDATE consent_events SET seq = :seq WHERE id = :id", seq=target.seq + 1, id=target.id)
    row, found = check(app, incremental=True)
    assert row.status == "broken"
    assert any(f"event {successor.id}" in f for f in found)


def test_a_consistently_rewritten_chain_passes_a_bare_hash_chain_check_but_not_the_checkpoint(app, checkpointed):
    target = middle(rows(app))
    rewrite_chain(app, target.subject, channel="forged")
    # Without a checkpoint, a chain whose every hash and link was recomputed cannot be told from the original.
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 1, result.output  # the CLI's full run compares with the latest checkpoint
    assert "checkpoint of verification" in result.output
    incremental, _ = check(app, incremental=True)
    assert incremental.status == "broken" and "checkpoint of verification" in incremental.first_break_problem
    # The bare chain check (no checkpoint) has nothing to hold the forgery against.
    with app.extensions["db"].sessions() as session:
        from consent.ledger import verify

        assert list(verify(session, batch=7)) == []


def test_content_edited_before_the_checkpoint_under_a_stale_hash_is_caught_only_by_a_full_run(app, checkpointed):
    """The limit stated in docs/architecture.md: an incremental run does not re-read unchanged chains' content."""
    target = middle(rows(app))
    execute(app, "UPDATE consent_events SET purposes = :p WHERE id = :id",
            p='{"ads":true,"analytics":true,"core":true}', id=target.id)
    incremental, _ = check(app, incremental=True)
    assert incremental.status == "intact"
    claims = app.extensions["keys"].signer.verify(incremental.checkpoint)
    assert claims["contentVerifiedAt"] == checkpointed.started_at.isoformat()  # content not re-read since then
    full, _ = check(app)
    assert (full.status, full.first_break) == ("broken", target.id)


def test_a_stale_hash_edit_before_the_checkpoint_is_found_once_its_chain_gains_an_event(app, consent,
                                                                                      checkpointed):
    """An incremental run re-reads a changed chain whole, its older events included."""
    subject = pseudonym(app, "subject-5")
    target = next(r for r in rows(app) if r.subject == subject)  # the first of its six events
    execute(app, "UPDATE consent_events SET gpc = :gpc WHERE id = :id", gpc=True, id=target.id)
    assert check(app, incremental=True)[0].status == "intact"  # the chain did not change: not re-read
    assert consent("subject-5").status_code == 201
    row, _ = check(app, incremental=True)
    assert (row.status, row.first_break) == ("broken", target.id)


def pseudonym(app, subject_id: str) -> str:
    with app.extensions["db"].engine.connect() as conn:
        app_id = conn.execute(text("SELECT id FROM apps WHERE slug = 'app-a'")).scalar_one()
    return app.extensions["keys"].pseudonyms.subject(app_id, subject_id)


def test_an_erasure_after_the_checkpoint_is_not_a_break(app, consent, checkpointed):
    """A rights request's erasure removes events that the checkpoint covers; their audited places stand in."""
    ledger = rows(app)
    victim = middle(ledger).subject
    with app.extensions["db"].session() as session:
        app_id = session.scalar(text("SELECT app_id FROM consent_events WHERE subject = :s LIMIT 1"), {"s": victim})
        removed = consent_service.erase_subject_chain(session, app_id, victim, "dsar:test")
    assert removed == len([r for r in ledger if r.subject == victim])
    incremental, found = check(app, incremental=True)
    assert incremental.status == "intact", found
    full, found = check(app)
    assert full.status == "intact", found


def test_a_tampered_checkpoint_is_a_break_and_the_run_falls_back_to_full(app, checkpointed):
    head, body, sig = checkpointed.checkpoint.split(".")
    forged = f"{head}.{body}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
    execute(app, "UPDATE ledger_verifications SET checkpoint = :c WHERE id = :id", c=forged, id=checkpointed.id)
    row, found = check(app, incremental=True)
    assert (row.status, row.mode) == ("broken", "full")
    assert row.first_break == f"verification {checkpointed.id}" and "does not verify" in found[0]
    assert row.events_checked == len(rows(app))


def test_without_a_checkpoint_since_checkpoint_verifies_in_full(app, long_ledger):
    result = app.test_cli_runner().invoke(args=["ledger", "verify", "--since-checkpoint"])
    assert result.exit_code == 0, result.output
    assert "verified in full" in result.output and "(full)" in result.output
    with app.extensions["db"].sessions() as session:
        assert session.scalars(select(LedgerVerification.mode)).all() == ["full"]
