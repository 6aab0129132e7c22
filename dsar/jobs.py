"""Rights-request jobs (RQ queues `dsar` and `dsar_bulk`, or in-process): a request's store tasks, then its closing.

A job carries one task, or all of one request's tasks on the `dsar` queue (the dispatcher groups them): those run
side by side in threads, so a request's small stores are not run one after another by a single worker, and the
request is closed once, by the job that ran its last task.

Every job is idempotent: it re-reads its tasks from the database, skips finished work, and a store's erase or an
export part can be done again without harm. While a task runs its job renews a lease on the task row; when a worker
dies the lease lapses and the reconciler hands the task to another job. Each run numbers itself (`attempts`) and
writes its result only if no later run took the task over, so a presumed-dead worker cannot overwrite it.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update

from dsar import completion, exports, fields
from dsar.config import BULK_QUEUE, QUEUE, Options, export_dir, options
from dsar.models import CONSENT_TASK, TASK_FINAL, DsarRequest, DsarTask
from dsar.states import give_up
from holds.service import holds_for_subject
from service import audit
from service.db import utcnow
from service.runtime import Runtime, runtime
from service.stores import NotApplicable
from service.stores.registry import registry_for

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def queue_of(opts: Options, store: str) -> str:
    """The queue of a store's tasks: `dsar_bulk` for the stores `[dsar] bulk_stores` names, else `dsar`."""
    return BULK_QUEUE if store in opts.bulk_stores else QUEUE


def enqueue_tasks(rt: Runtime, task_ids: list[str], queue: str, job_id: str) -> None:
    """One job for `task_ids` (one request's tasks, all of `queue`)."""
    opts = options(rt.settings)
    rt.queue.enqueue(run_tasks, task_ids, queue=queue, job_id=job_id,
                     retries=opts.task_attempts - 1, retry_intervals=opts.retry_intervals, timeout=6 * 3600)


class Lease:
    """Renews a running task's lease every third of its length, from a thread beside the job."""

    def __init__(self, rt: Runtime, task_id: str, attempt: int, seconds: int) -> None:
        self._rt, self._task_id, self._attempt, self._seconds = rt, task_id, attempt, seconds
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._beat, name=f"lease-{task_id[:8]}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._seconds / 3):
            try:
                with self._rt.db.session() as session:
                    renewed = session.execute(
                        update(DsarTask).where(DsarTask.id == self._task_id, DsarTask.attempts == self._attempt,
                                               DsarTask.state == "running")
                        .values(lease_until=utcnow() + timedelta(seconds=self._seconds))).rowcount
            except Exception:  # a missed beat is retried; the lease has slack for two
                log.warning("lease renewal of task %s failed", self._task_id, exc_info=True)
                continue
            if not renewed:
                self.lost = True  # another run took the task over: stop renewing
                return

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def run_task(task_id: str) -> None:
    """The job of one task (jobs enqueued before tasks were grouped name this function)."""
    run_tasks([task_id])


def run_tasks(task_ids: list[str]) -> None:
    """The job of one request's tasks: claim them, run each against its store (side by side), record each
    result, and close the request if they were its last.

    No path runs a task more than `[dsar] task_attempts` times: the claim counts the attempt before anything else
    can fail, and a task whose attempts are spent is failed instead of run again (its last run died, or could
    not record what it did). A failure to record the result is itself recorded as the attempt's failure. A task
    left to retry makes the job raise once every task has ended, so RQ runs the job again later: the tasks that
    are final by then are skipped.
    """
    rt = runtime()
    opts = options(rt.settings)
    claims, to_close, works = _claim(rt, task_ids, opts)
    worker = _worker_name()  # here: the job is this thread's, not the task threads'
    results = _side_by_side(rt, [lambda c=c: _attempt(rt, c, works[c.request_id], opts, worker) for c in claims])
    retry: list[str] = []
    bulk_lane: set[str] = set()
    for claim, (mine, state) in zip(claims, results, strict=True):
        if mine:
            to_close.add(claim.request_id)
            if claim.store in opts.bulk_stores:
                bulk_lane.add(claim.request_id)
            if state == "pending":
                retry.append(claim.store)
    if retry:
        raise RuntimeError(f"tasks on {', '.join(retry)} failed; retrying")  # RQ retries with backoff
    for request_id in sorted(to_close):
        # A job already on the bulk queue assembles a large export itself; any other hands it to that queue.
        completion.close_request(rt, request_id, bulk_lane=request_id in bulk_lane)


def _side_by_side(rt: Runtime, calls: list[Callable[[], _T]]) -> list[_T]:
    """The calls' results, run in threads when there are several and the database takes concurrent writers
    (SQLite, the embedded default, runs them one after another)."""
    if len(calls) == 1 or rt.db.dialect == "sqlite":
        return [call() for call in calls]
    # Each thread runs in a copy of this context: the runtime in use (in-process jobs) goes with it.
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="dsar-task") as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
        return [f.result() for f in futures]


def _attempt(rt: Runtime, claim: _Claim, work: _Work | str, opts: Options, worker: str) -> tuple[bool, str]:
    """One claimed task's run, its result recorded: (whether this run's result was written, the task's state)."""
    started = time.monotonic()
    with Lease(rt, claim.task_id, claim.attempt, opts.lease_seconds):
        outcome = _run(rt, claim, work, opts)
    outcome = replace(outcome, seconds=round(time.monotonic() - started, 3))
    try:
        mine = _record(rt, claim, outcome, worker)
    except Exception as exc:  # noqa: BLE001 - e.g. a result the database refuses: the attempt failed
        log.warning("dsar task %s on store %s: could not record the result of attempt %d: %s", claim.task_id,
                    claim.store, claim.attempt, type(exc).__name__)
        outcome = _Outcome(_failed_or_retried(claim.attempt, opts),
                           error=f"could not record the result: {type(exc).__name__}", seconds=outcome.seconds)
        # If even this fails (the database is gone), the lease lapses and the reconciler decides, with this
        # attempt counted.
        mine = _record(rt, claim, outcome, worker)
    if not mine:
        log.warning("dsar task %s: run %d was taken over by a later run; its result is dropped", claim.task_id,
                    claim.attempt)
    return mine, outcome.state


@dataclass(frozen=True)
class _Claim:
    """A task this run took: its run number, its store, and the request's id and app."""

    task_id: str
    attempt: int
    store: str
    request_id: str
    app_id: int


@dataclass(frozen=True)
class _Outcome:
    """How an attempt ended: the task's next state and what goes with it."""

    state: str
    counts: dict[str, Any] = field(default_factory=dict)
    kept: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    error: str | None = None
    seconds: float = 0.0  # how long the attempt's work took


def _failed_or_retried(attempt: int, opts: Options) -> str:
    return "failed" if attempt >= opts.task_attempts else "pending"


def _claim(rt: Runtime, task_ids: list[str], opts: Options
           ) -> tuple[list[_Claim], set[str], dict[str, _Work | str]]:
    """Take the tasks for a new run, in one transaction committed before any work (rows locked in id order, so
    two jobs sharing tasks cannot deadlock). Returns the claims; the requests whose tasks are final already (or
    were just failed for lack of attempts) and where only the closing may be left; and what the claimed tasks'
    requests give them to work with (`_work`). A task is skipped when there is nothing to do: no such task, a
    request not in progress, a live run holding it."""
    claims: list[_Claim] = []
    to_close: set[str] = set()
    with rt.db.session() as session:
        tasks = session.scalars(select(DsarTask).where(DsarTask.id.in_(task_ids)).order_by(DsarTask.id)
                                .with_for_update())
        requests: dict[str, DsarRequest | None] = {}
        for task in tasks:
            if task.request_id not in requests:
                requests[task.request_id] = session.get(DsarRequest, task.request_id)
            req = requests[task.request_id]
            if req is None or req.status != "in_progress":
                continue
            if task.state in TASK_FINAL:
                to_close.add(req.id)
                continue
            if task.state == "running" and task.lease_until and task.lease_until > utcnow():
                continue  # a live job holds it; the reconciler comes back if its lease lapses
            if task.attempts >= opts.task_attempts:
                give_up(session, task, req.app_id, opts.task_attempts)
                to_close.add(req.id)
                continue
            task.state, task.attempts = "running", task.attempts + 1
            task.lease_until = utcnow() + timedelta(seconds=opts.lease_seconds)
            claims.append(_Claim(task.id, task.attempts, task.store, req.id, req.app_id))
        works = {rid: _work(rt, requests[rid]) for rid in {c.request_id for c in claims}}  # type: ignore[arg-type]
    return claims, to_close, works


def _work(rt: Runtime, req: DsarRequest) -> _Work | str:
    """What the request's tasks need, decrypted once; never raises, so the claim commits whatever happens here:
    the error is then each task's outcome."""
    try:
        return _Work(req.id, req.type, req.app_id, fields.subject_of(rt, req), fields.details_of(rt, req),
                     exports.unwrap(rt.keys, req.export_key, req.id) if req.export_key else None)
    except Exception as exc:  # noqa: BLE001 - recorded on every task of the request
        log.warning("dsar request %s: its tasks' details cannot be read: %s", req.id, type(exc).__name__)
        return f"{type(exc).__name__}: {exc}"[:1000]


def _run(rt: Runtime, claim: _Claim, work: _Work | str, opts: Options) -> _Outcome:
    """The attempt's work against its store; never raises: every failure is the attempt's outcome."""
    if isinstance(work, str):
        return _Outcome(_failed_or_retried(claim.attempt, opts), error=work)
    try:
        counts, kept, note = _execute(rt, work, claim.store)
        return _Outcome("done", counts, kept, note)
    except NotApplicable as exc:
        # The store cannot look this subject up by the identity given (e.g. an email for a store keyed by
        # user_id): nothing of theirs can be found there. The message names identity types, never values.
        return _Outcome("not_applicable", note=str(exc)[:1000])
    except Exception as exc:  # noqa: BLE001 - any store failure is recorded on the task
        log.warning("dsar task %s on store %s failed (attempt %d): %s", claim.task_id, claim.store,
                    claim.attempt, type(exc).__name__)
        return _Outcome(_failed_or_retried(claim.attempt, opts), error=f"{type(exc).__name__}: {exc}"[:1000])


def _record(rt: Runtime, claim: _Claim, outcome: _Outcome, worker: str) -> bool:
    """Write the attempt's outcome, unless a later run took the task over; returns whether it was written."""
    with rt.db.session() as session:
        values: dict[str, Any] = {"state": outcome.state, "lease_until": None, "updated_at": utcnow(),
                                  "last_error": outcome.error}
        if outcome.state in ("done", "not_applicable"):
            values.update(counts=outcome.counts, kept=outcome.kept, note=outcome.note)
        mine = session.execute(update(DsarTask).where(DsarTask.id == claim.task_id,
                                                      DsarTask.attempts == claim.attempt)
                               .values(**values)).rowcount
        if not mine:
            return False
        audit.record(session, app_id=claim.app_id, actor="system", action=f"dsar.task_{outcome.state}",
                     resource_type="dsar_task", resource_id=claim.task_id,
                     details={"request": claim.request_id, "store": claim.store, "attempt": claim.attempt,
                              "counts": outcome.counts, "worker": worker, "seconds": outcome.seconds})
    return True


def _worker_name() -> str:
    """The RQ worker running this job (as `rq info` lists it), or "in-process": the trail shows which runs
    overlapped on which workers."""
    from rq import get_current_job

    job = get_current_job()
    return (job.worker_name or "rq") if job is not None else "in-process"


class _Work:
    """What a task needs from its request, read (and decrypted) once when the task is claimed."""

    def __init__(self, request_id: str, kind: str, app_id: int, identity: dict[str, str],
                 details: dict[str, Any] | None, export_key: bytes | None) -> None:
        self.request_id, self.kind, self.app_id, self.identity = request_id, kind, app_id, identity
        self.details, self.export_key = details, export_key


def _execute(rt: Runtime, work: _Work, store_name: str) -> tuple[dict[str, int], dict[str, list[str]], str | None]:
    if store_name == CONSENT_TASK:
        return _withdraw_consents(rt, work), {}, None
    store = registry_for(rt).get(store_name)
    if work.kind in ("access", "portability"):
        parts = export_dir(rt.settings, work.request_id) / "parts"
        counts = exports.write_part(parts, store_name, work.export_key, work.request_id,  # type: ignore[arg-type]
                                    store.access(work.identity))
        return counts, {}, None
    if work.kind == "rectification":
        corrections = {c: f for c, f in (work.details or {}).get("corrections", {}).items()
                       if c in store.describe().categories}
        return store.rectify(work.identity, corrections), {}, None  # type: ignore[attr-defined]
    with rt.db.sessions() as session:
        holds = [h for h in holds_for_subject(session, rt.keys, app_id=work.app_id, identity=work.identity)
                 if h.applies_to(store_name)]
    kept: dict[str, list[str]] = {}
    for hold in holds:
        kept.setdefault(hold.category or "*", []).append(hold.reason)
    if "*" in kept:
        return {}, kept, "the whole store is under a legal hold for this subject: nothing erased"
    return store.erase(work.identity, exclude_categories=set(kept)), kept, None


def _withdraw_consents(rt: Runtime, work: _Work) -> dict[str, int]:
    """Withdraw every consent the subject holds, through the consent service (receipts and ledger included); with
    `details = {"scope": "sale_or_sharing"}` (an opt-out of sale) only the purposes marked as a sale or sharing."""
    from consent.cache import PolicyCache
    from consent.context import Context
    from consent.history import subject_policy_keys
    from consent.policies import sale_purposes
    from consent.record import withdraw
    from consent.status import status
    from service.tenancy import App, Principal

    user_id = work.identity.get("user_id")
    if not user_id:
        raise NotApplicable("consent records are kept by user_id")
    withdrawn = purposes = 0
    sale_only = (work.details or {}).get("scope") == "sale_or_sharing"
    with rt.db.session() as session:  # reads only: each withdrawal commits on its own (the ledger's write)
        slug = session.get(App, work.app_id).slug
        principal = Principal(app_id=work.app_id, app_slug=slug, key_id=f"dsar-{work.request_id[:8]}",
                              scopes=frozenset())
        ctx = Context(principal=principal, keys=rt.keys, settings=rt.settings)
        for key in subject_policy_keys(session, work.app_id, ctx.pseudonym(user_id)):
            state = status(session, ctx, PolicyCache(0), user_id, key)
            if sale_only:
                granted = [p for p in sale_purposes(session, work.app_id, key) if state["purposes"].get(p)]
                if granted:  # only what is still granted: a re-run adds nothing
                    withdraw(rt.db, ctx, {"subject_id": user_id, "policy": key, "purposes": granted,
                                          "channel": "dsar"})
                    withdrawn, purposes = withdrawn + 1, purposes + len(granted)
            elif any(state["purposes"].values()):  # already all withdrawn: a re-run adds nothing
                withdraw(rt.db, ctx, {"subject_id": user_id, "policy": key, "channel": "dsar"})
                withdrawn += 1
    return {"policies_withdrawn": withdrawn, **({"purposes_withdrawn": purposes} if sale_only else {})}
