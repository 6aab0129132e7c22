"""The dispatch outbox and the reconciler: how task rows in the database become RQ jobs, and become them again
when Redis lost them or their worker died. The database is the truth; Redis only carries work to workers."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import func, or_, select, update

from dsar.completion import close_job_id, close_request
from dsar.config import QUEUE, options
from dsar.jobs import enqueue_tasks, queue_of
from dsar.models import MANUAL_TASK, DsarDispatch, DsarRequest, DsarTask
from dsar.states import give_up
from service.db import utcnow
from service.runtime import Runtime

log = logging.getLogger(__name__)
# RQ job states in which the job will still run (or is waiting for its retry): nothing to re-enqueue then.
_WAITING = frozenset({"queued", "scheduled", "deferred"})


def job_id(task_id: str, dispatch_id: int) -> str:
    return f"dsar-{task_id}-{dispatch_id}"


def dispatch(rt: Runtime) -> int:
    """Enqueue jobs for every undispatched outbox row; returns how many rows were sent.

    A request's rows for the `dsar` queue become one job (its tasks run side by side); a row for `dsar_bulk`, or
    one the reconciler wrote, is a job of its own (a request's large stores can run on several workers; a task
    whose run died is not run beside the others again). Safe from many processes at once:
    rows are claimed by the UPDATE that marks them (and names their job), so each row goes into one job. Called
    right after the commit that wrote the rows, by `flask dsar dispatch` and by the maintenance pass. Never
    raises for the queue: when Redis cannot take a job, its rows are given back and the pass stops (the rows wait
    in the database for the next pass; the caller's committed work stands). Commits each claim on its own: rows
    are marked sent before their job is enqueued, so two passes never send them twice.
    """
    from dsar.agents.status import sync_dirty

    sync_dirty(rt)  # the caller just committed rights-request work: tell the agents whose request changed
    opts = options(rt.settings)
    with rt.db.sessions() as session:
        pending = list(session.execute(select(DsarDispatch.id, DsarDispatch.task_id, DsarTask.store,
                                              DsarTask.request_id, DsarDispatch.alone)
                                       .join(DsarTask, DsarTask.id == DsarDispatch.task_id)
                                       .where(DsarDispatch.dispatched_at.is_(None))
                                       .order_by(DsarDispatch.id).limit(1000)))
    groups: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for row_id, task_id, store, request_id, alone in pending:
        queue = queue_of(opts, store)
        key = (request_id, queue) if queue == QUEUE and not alone else (request_id, queue, task_id)
        groups.setdefault(key, []).append((row_id, task_id))
    sent = 0
    for index, (key, rows) in enumerate(groups.items()):
        job = job_id(rows[0][1], rows[0][0])
        with rt.db.session() as session:
            claimed = list(session.execute(update(DsarDispatch)
                                           .where(DsarDispatch.id.in_([r for r, _ in rows]),
                                                  DsarDispatch.dispatched_at.is_(None))
                                           .values(dispatched_at=utcnow(), job=job)
                                           .returning(DsarDispatch.id, DsarDispatch.task_id)))
        if not claimed:
            continue
        claimed.sort()
        try:
            enqueue_tasks(rt, [task_id for _, task_id in claimed], key[1], job)
        except Exception as exc:  # noqa: BLE001 - the queue is down (or, in-process, the job failed)
            if rt.queue.redis is None:
                # In-process the job ran and failed; its task rows say how, and the reconciler takes it on.
                log.warning("dsar dispatch: in-process job %s failed: %s", job, type(exc).__name__)
                sent += len(claimed)
                continue
            log.warning("dsar dispatch: the queue refused a job (%s); %d job(s) left for the next pass",
                        type(exc).__name__, len(groups) - index)
            with rt.db.session() as session:
                session.execute(update(DsarDispatch).where(DsarDispatch.id.in_([r for r, _ in claimed]))
                                .values(dispatched_at=None, job=None))
            break
        sent += len(claimed)
    return sent


def _waiting_jobs(rt: Runtime, ids: Iterable[str]) -> set[str]:
    """The job ids Redis still holds queued or scheduled (none in-process: those jobs ran at once)."""
    ids = list(ids)
    if rt.queue.redis is None or not ids:
        return set()
    from rq.job import Job

    jobs = Job.fetch_many(ids, connection=rt.queue.redis)
    return {job.id for job in jobs if job is not None and job.get_status(refresh=False) in _WAITING}


def reconcile(rt: Runtime) -> int:
    """Re-dispatch every unfinished task no job will run (on its store's queue), fail those with no attempt left,
    and close requests whose tasks are all final (a large export's close job is enqueued again unless it waits).

    A task needs a new job when it is `running` with a lapsed lease (its worker died: a live job renews the
    lease), or `pending` while its latest job is no longer waiting in Redis (flushed, restarted, or lost between
    a failure and its retry). Such a task that has used every attempt (`[dsar] task_attempts`) gets no new job:
    it is failed, and its request closes. Returns the number of tasks re-dispatched. Commits as it goes (the
    failures, the new outbox rows, each closing), so each step stands if a later one fails.
    """
    limit = options(rt.settings).task_attempts
    now = utcnow()
    latest = (select(DsarDispatch.task_id, func.max(DsarDispatch.id).label("last"))
              .group_by(DsarDispatch.task_id).subquery())
    with rt.db.sessions() as session:
        rows = list(session.execute(
            select(DsarTask.id, DsarTask.state, DsarTask.lease_until, DsarTask.attempts, DsarDispatch.id,
                   DsarDispatch.dispatched_at, DsarDispatch.job)
            .join(DsarRequest, DsarRequest.id == DsarTask.request_id)
            .outerjoin(latest, latest.c.task_id == DsarTask.id)
            .outerjoin(DsarDispatch, DsarDispatch.id == latest.c.last)
            .where(DsarRequest.status == "in_progress", DsarTask.state.in_(("pending", "running")),
                   DsarTask.store != MANUAL_TASK)))
    candidates, spent = [], []
    for task_id, state, lease_until, attempts, dispatch_id, dispatched_at, job in rows:
        if lease_until is not None and lease_until > now:
            continue  # a live worker holds it
        if attempts >= limit:
            spent.append(task_id)
            continue
        if state == "pending" and dispatch_id is not None and dispatched_at is None:
            continue  # its outbox row is not sent yet: dispatch() takes care of it
        candidates.append((task_id, state, None if dispatch_id is None else job or job_id(task_id, dispatch_id)))
    if spent:
        _give_up(rt, spent, limit)
    waiting = _waiting_jobs(rt, [j for _, state, j in candidates if j and state == "pending"])
    redo = [task_id for task_id, state, j in candidates if state == "running" or j not in waiting]
    if redo:
        with rt.db.session() as session:
            session.add_all(DsarDispatch(task_id=task_id, alone=True) for task_id in redo)
        log.info("reconciler: re-dispatching %d task(s)", len(redo))
    dispatch(rt)
    with rt.db.sessions() as session:
        stuck = list(session.scalars(
            select(DsarRequest.id).where(DsarRequest.status == "in_progress",
                                         ~select(DsarTask.id).where(DsarTask.request_id == DsarRequest.id,
                                                                    DsarTask.state.in_(("pending", "running")))
                                         .exists())))
    try:
        waiting = _waiting_jobs(rt, [close_job_id(r) for r in stuck])
    except Exception as exc:  # noqa: BLE001 - Redis is down: small exports still close; large ones wait for it
        log.warning("reconciler: cannot see the close jobs in Redis (%s)", type(exc).__name__)
        waiting = set()
    for request_id in stuck:
        if close_job_id(request_id) not in waiting:  # a waiting close job will do it: no second one
            close_request(rt, request_id)
    return len(redo)


def _give_up(rt: Runtime, task_ids: list[str], limit: int) -> None:
    """Fail tasks that used every attempt and whose last run is gone (checked again under the row lock)."""
    with rt.db.session() as session:
        for task_id in task_ids:
            task = session.scalar(select(DsarTask).where(
                DsarTask.id == task_id, DsarTask.state.in_(("pending", "running")), DsarTask.attempts >= limit,
                or_(DsarTask.lease_until.is_(None), DsarTask.lease_until <= utcnow())).with_for_update())
            if task is not None:
                app_id = session.scalar(select(DsarRequest.app_id).where(DsarRequest.id == task.request_id))
                give_up(session, task, app_id, limit)
    log.warning("reconciler: %d task(s) failed with no attempt left", len(task_ids))
