"""Job entry points on the `retention` queue (RQ workers, or in-process in the embedded default)."""

from __future__ import annotations

import logging

from retention import execution, runs, schedule
from service.runtime import runtime

log = logging.getLogger(__name__)


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
        if runs.dispatch(rt.queue, run_id):
            started.append(run_id)
    run_id = schedule.claim_due(rt.db)
    if run_id is not None and runs.dispatch(rt.queue, run_id):
        started.append(run_id)
    return started
