"""The journal's statements, built once: a run executes them for every batch."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exists, update

from retention.models import RetentionBatch, RetentionLock, RetentionRun
from service.db import UTCDateTime

BATCHES = RetentionBatch.__table__

CONFIRM = (update(BATCHES).where(BATCHES.c.id == sa.bindparam("confirm_id"))
           .values(state="committed", count=sa.bindparam("confirm_count"),
                   digest=sa.bindparam("confirm_digest"), keys=None))


def _prepare_statement(policy_fence: bool, confirm: bool) -> sa.Insert:
    """INSERT a prepared batch only while the attempt holds its run (and policy): a fence, in the same statement."""
    holder = exists().where(RetentionRun.id == sa.bindparam("p_run"),
                            RetentionRun.lease_token == sa.bindparam("p_token"))
    if policy_fence:
        holder = holder.where(exists().where(RetentionLock.policy_id == sa.bindparam("p_policy"),
                                             RetentionLock.run_id == sa.bindparam("p_run")))
    values = sa.select(sa.bindparam("p_step", type_=sa.Integer()), sa.bindparam("p_seq", type_=sa.Integer()),
                       sa.literal("prepared"), sa.bindparam("p_count", type_=sa.Integer()),
                       sa.bindparam("p_keys", type_=BATCHES.c["keys"].type),
                       sa.bindparam("p_digest", type_=BATCHES.c["digest"].type),
                       sa.bindparam("p_at", type_=UTCDateTime())).where(holder)
    stmt = BATCHES.insert().from_select(["step_id", "seq", "state", "count", "keys", "digest", "recorded_at"],
                                        values)
    if confirm:
        stmt = stmt.add_cte(CONFIRM.returning(BATCHES.c.id).cte("confirmed"))
    return stmt.returning(BATCHES.c.id)


PREPARE = {fence: _prepare_statement(fence, False) for fence in (False, True)}
PREPARE_AND_CONFIRM = {fence: _prepare_statement(fence, True) for fence in (False, True)}
