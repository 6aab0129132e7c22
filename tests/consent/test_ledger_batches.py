"""The ledger check over ledgers many batches long: a small `--batch` makes a few hundred events cross dozens of
batches, with chains that straddle batch boundaries, and tampering in the middle of a later batch is named."""

from __future__ import annotations

from tests.consent.conftest import LEDGER_SUBJECTS
from tests.consent.tamper import Row, execute, rows

BATCH = 7


def verify(app, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["ledger", "verify", "--batch", str(BATCH), *args])
    # An exception inside the command is part of what a failing assertion should show.
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return (2 if crashed else result.exit_code), result.output + (repr(result.exception) if crashed else "")


def middle_of_a_later_batch(ledger: list[Row], batch_number: int) -> Row:
    """An event inside batch `batch_number` or the first batch after it that has one (not the batch's first or
    last row), that is neither the first nor the last event of its chain, so its chain continues on both sides."""
    for number in range(batch_number, len(ledger) // BATCH):
        start = number * BATCH
        for row in ledger[start + 1:start + BATCH - 1]:
            chain = [r for r in ledger if r.subject == row.subject]
            if chain[0] != row and chain[-1] != row:
                return row
    raise AssertionError(f"no mid-chain event in batch {batch_number} or after")


def test_the_ledger_spans_many_batches_with_chains_across_their_boundaries(app, long_ledger):
    ledger = rows(app)
    assert len(ledger) > 30 * BATCH
    crossing = {ledger[i].subject for i in range(BATCH, len(ledger), BATCH)
                if ledger[i - 1].subject == ledger[i].subject}
    assert len(crossing) >= 10
    assert len({r.subject for r in ledger}) == LEDGER_SUBJECTS


def test_untouched_long_ledger_passes(app, long_ledger):
    code, output = verify(app)
    assert code == 0, output
    assert "intact" in output


def test_altered_event_in_a_later_batch_is_named(app, long_ledger):
    target = middle_of_a_later_batch(rows(app), 25)
    execute(app, "UPDATE consent_events SET channel = 'web' WHERE id = :id", id=target.id)
    code, output = verify(app)
    assert code == 1, output
    assert f"event {target.id}" in output and "altered" in output


def test_deleted_event_in_a_later_batch_is_named(app, long_ledger):
    ledger = rows(app)
    target = middle_of_a_later_batch(ledger, 28)
    successor = next(r for r in ledger if r.subject == target.subject and r.seq == target.seq + 1)
    execute(app, "DELETE FROM consent_events WHERE id = :id", id=target.id)
    code, output = verify(app, "--all")
    assert code == 1, output
    assert f"event {target.id}" in output and "missing from the ledger" in output
    assert f"event {successor.id}" in output and "removed" in output


def test_reordered_event_in_a_later_batch_is_named(app, long_ledger):
    ledger = rows(app)
    target = middle_of_a_later_batch(ledger, 31)
    successor = next(r for r in ledger if r.subject == target.subject and r.seq == target.seq + 1)
    # Swap the target with its successor.
    execute(app, "UPDATE consent_events SET seq = -1 WHERE id = :id", id=target.id)
    execute(app, "UPDATE consent_events SET seq = :seq WHERE id = :id", seq=target.seq, id=successor.id)
    execute(app, "UPDATE consent_events SET seq = :seq WHERE id = :id", seq=target.seq + 1, id=target.id)
    code, output = verify(app)
    assert code == 1, output
    assert f"BROKEN: event {successor.id}" in output
