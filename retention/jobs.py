"""Job entry points on the `retention` queue (RQ workers, or in-process in the embedded default), and handing a
run to that queue."""

from __future__ import annotations

import logging
from typing import Any

from retention import execution, runs, schedule
from service.runtime import runtime

log = logging.getLogger(__name__)
RETRIES = 3
RETRY_INTERVALS = (10, 60, 300)


def dispatch(queue: Any, run_id: str) -> bool:
    """Hand the run to the `retention` queue (in-process in the embedded default: it runs now); returns whether
    the queue took it. Call after the run is committed. Never raises: a run the queue could not take (Redis
    down) stays `queued` until the scheduler's tick finds its job missing and dispatches it again
    (retention.schedule.stranded)."""
    try:
        queue.enqueue(execute_run, run_id, queue="retention", job_id=runs.job_id(run_id), retries=RETRIES,
                      retry_intervals=RETRY_INTERVALS, timeout=24 * 3600)
    except Exception as exc:  # noqa: BLE001 - the queue is down (or, in-process, the run failed: it says how)
        log.warning("retention run %s: not dispatched (%s); the scheduler's tick will", run_id, type(exc).__name__)
        return False
    return True


def execute_run(run_id: str) -> str | None:
    """Execute or resume one run; a second delivery of the same job finds the run taken or done."""
    return execution.execute(runtime(), run_id)


def run_due_policies() -> list[str]:
    """The scheduler's tick: start a run of the policies whose schedule came due, and dispatch again the runs
    left stranded (a dead attempt, or a job the queue never took or lost). Returns the runs dispatched."""
    rt = runtime()
    started = []
    for run_id in schedule.stranded(rt.db, redis=rt.queue.redis):
        log.info("retention run %s: dispatching again", run_id)
        if dispatch(rt.queue, run_id):
            started.append(run_id)
    run_id = schedule.claim_due(rt.db)
    if run_id is not None and dispatch(rt.queue, run_id):
        started.append(run_id)
    return started
