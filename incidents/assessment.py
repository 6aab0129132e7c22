"""Assessment runs, callable without Flask: who was affected by an incident, as counts.

A run lists, for each (store, category) of the incident's scope, the subjects with a record in the incident's
window (`store.subjects(category, since, until, batch_size=...)`), one batch per transaction. The people are
deduplicated across stores in the database: each `type:value` of an identity is kept as a keyed hash
(incident_subject_keys, unique per run), and identities that share one are one person (their rows merged). The
identities themselves are sealed with the field key, for a notice campaign, and destroyed with the incident's
retention. The report holds counts only.

A run is leased like a retention run: a crashed attempt's lease expires and the next attempt (an RQ retry, the
scheduler's pass, a retry request) resumes it. A step caught half-done starts again from its first batch: the
union is idempotent, so only the step's own count is reset.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from incidents import config, leases
from incidents.models import (
    AffectedSubject,
    AffectedSubjectKey,
    AssessmentRun,
    AssessmentStep,
    Delivery,
    Incident,
)
from service import audit
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound
from service.stores.contract import StoreError, can_list_subjects

log = logging.getLogger(__name__)
LIVE = leases.LIVE
CONTACT_TYPES = ("email",)
_CHUNK = 500  # keys per IN (...) lookup, within every backend's parameter limit


def _audit(session: Session, app_id: int | None, actor: str, incident_id: str, action: str,
           details: dict[str, Any]) -> None:
    audit.record(session, app_id=app_id, actor=actor, action=action, resource_type="incident",
                 resource_id=incident_id, details=details)


def request_run(session: Session, incident: Incident, actor: str) -> AssessmentRun:
    """A run over the incident's window and scope, in the caller's transaction; Invalid without a window,
    Conflict while another run of the incident is queued or running."""
    missing = [n for n in ("occurred_from", "occurred_until") if getattr(incident, n) is None]
    if missing:
        raise Invalid("an assessment needs the incident's window",
                      errors={n: ["required for an assessment run: set it with PATCH"] for n in missing})
    if not incident.scope:
        raise Invalid("an assessment needs a scope", errors={"scope": ["required for an assessment run"]})
    if incident.state == "closed":
        raise Conflict("the incident is closed")
    live = session.scalar(select(AssessmentRun.id).where(AssessmentRun.incident_id == incident.id,
                                                         AssessmentRun.state.in_(LIVE)))
    if live is not None:
        raise Conflict(f"assessment run {live} is queued or running", detail={"run": live})
    run = AssessmentRun(id=str(uuid.uuid4()), incident_id=incident.id, state="queued",
                        since=incident.occurred_from, until=incident.occurred_until, requested_by=actor)
    session.add(run)
    session.flush()
    session.add_all([AssessmentStep(run_id=run.id, position=i, store=e["store"], category=e["category"],
                                    state="pending") for i, e in enumerate(incident.scope)])
    _audit(session, incident.app_id, actor, incident.id, "incident.assessment_requested",
           {"run": run.id, "steps": len(incident.scope)})
    return run


def retry_run(session: Session, incident: Incident, run_id: str, actor: str) -> AssessmentRun:
    run = get_run(session, incident, run_id)
    if run.state == "succeeded":
        raise Conflict("the run has succeeded; request a new one")
    if run.state == "running" and run.lease_expires_at is not None and run.lease_expires_at > utcnow():
        raise Conflict("the run is being executed; a worker holds its lease")
    run.state, run.error, run.finished_at = "queued", None, None
    session.execute(update(AssessmentStep).where(AssessmentStep.run_id == run.id, AssessmentStep.state == "failed")
                    .values(state="pending", error=None))
    _audit(session, incident.app_id, actor, incident.id, "incident.assessment_retried", {"run": run.id})
    return run


def get_run(session: Session, incident: Incident, run_id: str) -> AssessmentRun:
    run = session.get(AssessmentRun, run_id)
    if run is None or run.incident_id != incident.id:
        raise NotFound(f"no assessment run {run_id!r}")
    return run


def latest(session: Session, incident_id: str) -> AssessmentRun | None:
    """The incident's latest succeeded run."""
    return session.scalars(select(AssessmentRun).where(AssessmentRun.incident_id == incident_id,
                                                       AssessmentRun.state == "succeeded")
                           .order_by(AssessmentRun.finished_at.desc()).limit(1)).first()


def runs_of(session: Session, incident_id: str) -> list[AssessmentRun]:
    return list(session.scalars(select(AssessmentRun).where(AssessmentRun.incident_id == incident_id)
                                .order_by(AssessmentRun.created_at.desc())))


def counts(session: Session, run: AssessmentRun) -> dict[str, Any]:
    """The run's report: counts only. Per store and category the subjects listed (or "not determinable"), the
    distinct people across stores, how many have a contact address, the personal-data categories involved."""
    steps = list(session.scalars(select(AssessmentStep).where(AssessmentStep.run_id == run.id)
                                 .order_by(AssessmentStep.position)))
    return {
        "run": run.id, "state": run.state, "since": run.since.isoformat(), "until": run.until.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "stores": [{"store": s.store, "category": s.category, "state": s.state,
                    "subjects": s.subjects if s.state == "done" else None,
                    "determinable": s.state != "not_determinable", "error": s.error} for s in steps],
        "distinct_subjects": run.distinct_subjects, "with_contact": run.with_contact,
        "categories": sorted({s.category for s in steps if s.state == "done" and s.subjects}),
        "not_determinable": [f"{s.store}/{s.category}" for s in steps if s.state == "not_determinable"],
        "subjects_destroyed_at": run.subjects_destroyed_at.isoformat() if run.subjects_destroyed_at else None,
    }


def run_view(session: Session, run: AssessmentRun) -> dict[str, Any]:
    return {**counts(session, run), "id": run.id, "requested_by": run.requested_by, "created_at": run.created_at,
            "started_at": run.started_at, "attempts": run.attempts, "error": run.error}


# --- execution ------------------------------------------------------------------------------------------------

def execute(rt: Any, stores: Any, run_id: str) -> str | None:
    """Execute or resume a run; None when another attempt holds it or it has finished. Commits per batch."""
    opts = config.options(rt.settings)
    token = leases.claim(rt.db, AssessmentRun, run_id, opts.lease_seconds)
    if token is None:
        return None
    with rt.db.sessions() as session:
        run = session.get(AssessmentRun, run_id)
        assert run is not None
        app_id = session.scalar(select(Incident.app_id).where(Incident.id == run.incident_id))
        since, until, incident_id = run.since, run.until, run.incident_id
        steps = [(s.id, s.store, s.category, s.state) for s in session.scalars(
            select(AssessmentStep).where(AssessmentStep.run_id == run_id).order_by(AssessmentStep.position))]
    try:
        for step_id, store_name, category, state in steps:
            if state in ("done", "not_determinable"):
                continue
            _step(rt, stores, run_id, token, app_id, step_id, store_name, category, since, until, opts)
    except leases.LeaseLost:
        log.warning("assessment run %s: lease lost; another attempt carries on", run_id)
        return None
    with rt.db.session() as session:
        leases.renew(session, AssessmentRun, run_id, token, opts.lease_seconds)
        run = session.get(AssessmentRun, run_id)
        assert run is not None
        failed = session.scalar(select(func.count()).where(AssessmentStep.run_id == run_id,
                                                           AssessmentStep.state == "failed")) or 0
        run.distinct_subjects = session.scalar(select(func.count()).where(AffectedSubject.run_id == run_id)) or 0
        run.with_contact = session.scalar(select(func.count()).where(
            AffectedSubject.run_id == run_id, AffectedSubject.has_contact.is_(True))) or 0
        run.state = "failed" if failed else "succeeded"
        run.error = f"{failed} step(s) failed; retry the run" if failed else None
        run.finished_at, run.lease_token, run.lease_expires_at = utcnow(), None, None
        _audit(session, app_id, "system", incident_id, f"incident.assessment_{run.state}",
               {"run": run_id, "distinct_subjects": run.distinct_subjects, "with_contact": run.with_contact,
                "failed_steps": failed})
        return run.state


def _step(rt: Any, stores: Any, run_id: str, token: str, app_id: int, step_id: int, store_name: str,
          category: str, since: Any, until: Any, opts: config.Options) -> None:
    with rt.db.session() as session:
        leases.renew(session, AssessmentRun, run_id, token, opts.lease_seconds)
        step = session.get(AssessmentStep, step_id)
        assert step is not None
        # A step caught running was cut off by a crash: list it again from the start (the union is idempotent).
        step.state, step.subjects, step.batches, step.error = "running", 0, 0, None
        store = stores.get(store_name) if store_name in stores else None
        if store is not None and not can_list_subjects(store):
            step.state = "not_determinable"
            return
        if store is None:
            step.state, step.error = "failed", f"no store named {store_name!r}"
            return
    try:
        for batch in store.subjects(category, since, until, batch_size=opts.batch_size):
            with rt.db.session() as session:
                leases.renew(session, AssessmentRun, run_id, token, opts.lease_seconds)
                merge(session, rt.keys, app_id, run_id, batch)
                session.execute(update(AssessmentStep).where(AssessmentStep.id == step_id).values(
                    subjects=AssessmentStep.subjects + len(batch), batches=AssessmentStep.batches + 1),
                    execution_options={"synchronize_session": False})
    except StoreError as exc:
        with rt.db.session() as session:
            session.execute(update(AssessmentStep).where(AssessmentStep.id == step_id)
                            .values(state="failed", error=str(exc)[:2000]))
        return
    with rt.db.session() as session:
        leases.renew(session, AssessmentRun, run_id, token, opts.lease_seconds)
        session.execute(update(AssessmentStep).where(AssessmentStep.id == step_id).values(state="done"))


# --- the union of identities across stores ------------------------------------------------------------------

def _normal(kind: str, value: str) -> str:
    return value.strip().lower() if kind == "email" else value.strip()


def _keys(keys: Any, app_id: int, identity: dict[str, list[str]]) -> set[str]:
    return {keys.pseudonyms.subject(app_id, f"{kind}:{value}") for kind, values in identity.items()
            for value in values}


def _seal(keys: Any, run_id: str, identity: dict[str, list[str]]) -> bytes:
    return keys.fields.encrypt(json.dumps(identity, sort_keys=True).encode(), f"incident_subject:{run_id}")


def identity_of(keys: Any, subject: AffectedSubject) -> dict[str, list[str]]:
    """A person's identities as the stores gave them ({type: [values]}); for a notice campaign only."""
    return json.loads(keys.fields.decrypt(subject.identity, f"incident_subject:{subject.run_id}"))


def _union(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in a.items()}
    for kind, values in b.items():
        out[kind] = sorted(set(out.get(kind, [])) | set(values))
    return out


def merge(session: Session, keys: Any, app_id: int, run_id: str, batch: Iterable[dict[str, str]]) -> None:
    """Add a batch of identities to the run's people: a new person, or merged into the person (or people, who
    are then one) sharing any `type:value` with it. In the caller's transaction.

    Identities of the batch that share a `type:value` are one person first; the people no earlier batch knew
    (nearly all of them in the first store) are written in one multi-row insert and their keys in another, so a
    batch costs a few statements rather than two per person."""
    people = _people_of(keys, app_id, batch)
    if not people:
        return
    wanted = sorted(set().union(*(mine for _, mine in people)))
    owner: dict[str, int] = {}
    for i in range(0, len(wanted), _CHUNK):
        owner.update((k, s) for k, s in session.execute(select(AffectedSubjectKey.key, AffectedSubjectKey.subject_id)
                                                        .where(AffectedSubjectKey.run_id == run_id,
                                                               AffectedSubjectKey.key.in_(wanted[i:i + _CHUNK]))))
    known = [(identity, mine) for identity, mine in people if any(k in owner for k in mine)]
    fresh = [(identity, mine) for identity, mine in people if not any(k in owner for k in mine)]
    key_rows: list[dict[str, Any]] = []
    if known:
        ids = sorted(set(owner.values()))
        for i in range(0, len(ids), _CHUNK):  # into the identity map: the folds below read them from there
            list(session.scalars(select(AffectedSubject).where(AffectedSubject.id.in_(ids[i:i + _CHUNK]))))
        for identity, mine in known:
            survivor = _fold(session, keys, run_id, identity, sorted({owner[k] for k in mine if k in owner}), owner)
            new = [k for k in mine if k not in owner]
            key_rows += [{"run_id": run_id, "key": k, "subject_id": survivor} for k in new]
            owner.update(dict.fromkeys(new, survivor))
    if fresh:
        made = session.scalars(insert(AffectedSubject).returning(AffectedSubject.id, sort_by_parameter_order=True),
                               [{"run_id": run_id, "identity": _seal(keys, run_id, identity),
                                 "has_contact": any(t in identity for t in CONTACT_TYPES)}
                                for identity, _ in fresh]).all()
        key_rows += [{"run_id": run_id, "key": k, "subject_id": subject_id}
                     for (_, mine), subject_id in zip(fresh, made, strict=True) for k in sorted(mine)]
    if key_rows:  # RETURNING makes SQLAlchemy send multi-row VALUES, not one INSERT per row
        session.execute(insert(AffectedSubjectKey).returning(AffectedSubjectKey.id), key_rows).all()
    session.flush()


def _people_of(keys: Any, app_id: int, batch: Iterable[dict[str, str]]) -> list[tuple[dict[str, list[str]],
                                                                                   set[str]]]:
    """The batch's identities with their keys, those sharing a key joined into one (union-find)."""
    items: list[tuple[dict[str, list[str]], set[str]]] = []
    for raw in batch:
        identity = {k: [_normal(k, str(v))] for k, v in raw.items() if v is not None and str(v).strip()}
        if identity:
            items.append((identity, _keys(keys, app_id, identity)))
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, (_, mine) in enumerate(items):
        for k in mine:
            j = first.setdefault(k, i)
            if j != i:
                parent[root(i)] = root(j)
    groups: dict[int, tuple[dict[str, list[str]], set[str]]] = {}
    for i, (identity, mine) in enumerate(items):
        r = root(i)
        if r in groups:
            groups[r] = (_union(groups[r][0], identity), groups[r][1] | mine)
        else:
            groups[r] = (identity, set(mine))
    return list(groups.values())


def _fold(session: Session, keys: Any, run_id: str, identity: dict[str, list[str]], found: list[int],
          owner: dict[str, int]) -> int:
    """Merge `identity` into the earliest of the people `found` (their ids), folding the others into it (they were
    one person seen apart until now); returns the survivor's id."""
    survivor, others = found[0], found[1:]
    subject = session.get(AffectedSubject, survivor)
    assert subject is not None
    before = identity_of(keys, subject)
    merged = _union(before, identity)
    for other_id in others:
        other = session.get(AffectedSubject, other_id)
        assert other is not None
        merged = _union(merged, identity_of(keys, other))
        session.execute(update(AffectedSubjectKey).where(AffectedSubjectKey.subject_id == other_id)
                        .values(subject_id=survivor), execution_options={"synchronize_session": False})
        session.delete(other)
        for k, v in list(owner.items()):
            if v == other_id:
                owner[k] = survivor
    if merged != before:
        subject.identity = _seal(keys, run_id, merged)
        subject.has_contact = any(t in merged for t in CONTACT_TYPES)
    return survivor


def destroy_subjects(session: Session, run_id: str) -> int:
    """Destroy a run's subject list (keys and sealed identities); the counts stay. In the caller's transaction."""
    session.execute(delete(AffectedSubjectKey).where(AffectedSubjectKey.run_id == run_id))
    # A campaign's deliveries stay as evidence of what was queued, without the person.
    session.execute(update(Delivery).where(Delivery.subject_id.in_(
        select(AffectedSubject.id).where(AffectedSubject.run_id == run_id))).values(subject_id=None),
        execution_options={"synchronize_session": False})
    gone = session.execute(delete(AffectedSubject).where(AffectedSubject.run_id == run_id)).rowcount
    session.execute(update(AssessmentRun).where(AssessmentRun.id == run_id)
                    .values(subjects_destroyed_at=utcnow()))
    return gone or 0
