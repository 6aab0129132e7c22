"""PostgreSQL plans of the console's queue and overview use migration 0013's indexes (on a small table too: no seq
scans, bitmaps or sorts), so a change breaking a partial index's predicate shows; 0013's predicate is the model's."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from console import queue
from dsar.models import FINAL, OPEN_ONLY

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0013_console_indexes.py"


def test_the_migration_s_predicate_is_the_model_s_and_names_every_final_state() -> None:
    spec = importlib.util.spec_from_file_location("migration_0013", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert str(migration.OPEN_ONLY) == str(OPEN_ONLY)
    assert all(f"'{state}'" in str(OPEN_ONLY) for state in FINAL)


@pytest.fixture
def plans(app: Any, database_url: str) -> Iterator[Any]:
    """plans(call) -> the EXPLAIN output of each statement `call(session)` sends, sequential scans off."""
    if not database_url.startswith("postgresql"):
        pytest.skip("partial-index plans are PostgreSQL's")
    engine = app.extensions["db"].engine
    sent: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not statement.startswith("EXPLAIN") and "dsar_requests" in statement:
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)

    def explain(call: Any) -> list[str]:
        with app.extensions["db"].sessions() as session:
            call(session)
            cursor = session.connection().connection.cursor()
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
            found = []
            for statement, params in sent:
                cursor.execute("EXPLAIN " + statement, params)
                found.append("\n".join(row[0] for row in cursor.fetchall()))
            sent.clear()
            return found

    yield explain
    event.remove(engine, "before_cursor_execute", grab)


def test_the_overdue_queue_and_the_overview_use_the_open_requests_indexes(plans: Any) -> None:
    count, rows = plans(lambda s: queue.page(s, queue.Filters(overdue=True), None))
    assert "ix_dsar_requests_open_" in count
    assert "ix_dsar_requests_open_due" in rows and "Sort" not in rows  # read in due order, 25 rows, no sort
    _, rows = plans(lambda s: queue.page(s, queue.Filters(state=queue.OPEN, sort="-due"), (1, 2)))
    assert "ix_dsar_requests_open_due" in rows
    _, rows = plans(lambda s: queue.page(s, queue.Filters(sort="received"), None))
    assert "ix_dsar_requests_received" in rows and "Sort" not in rows
    (overview,) = plans(lambda s: queue.overview(s, None))
    assert "ix_dsar_requests_open_state" in overview


def test_the_overview_s_programme_figures_read_the_covering_due_date_index(plans: Any) -> None:
    from console import programme
    from service.db import utcnow

    (completion,) = plans(lambda s: programme.completion(s, None, utcnow()))
    assert "Index Only Scan using ix_dsar_requests_due_at" in completion
    (median,) = plans(lambda s: programme.median_close(s, None, utcnow()))
    assert "Index Only Scan using ix_dsar_requests_due_at" in median
