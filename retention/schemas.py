"""Request and response schemas of the retention API (unknown fields are rejected)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from retention.models import ACTIONS, RUN_STATES, TRIGGERS
from retention.periods import check_schedule, parse_duration

KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,99}$", error="use 1-100 lowercase letters, digits, '_', '.', '-'")
NAME = validate.Length(1, 100)


def _duration(value: str) -> None:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _schedule(value: str) -> None:
    try:
        check_schedule(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def StrictBool(**kwargs: Any) -> fields.Boolean:  # noqa: N802 - reads like a field class
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class RetentionPolicyIn(Schema):
    key = fields.String(load_default=None, validate=KEY, metadata={"description": "default: <store>.<category>"})
    store = fields.String(required=True, validate=NAME)
    category = fields.String(required=True, validate=NAME)
    retain_for = fields.String(required=True, validate=_duration,
                               metadata={"description": "ISO 8601 duration: P180D, P7Y, P1Y6M, PT12H"})
    action = fields.String(load_default="delete", validate=validate.OneOf(ACTIONS))
    basis = fields.String(required=True, validate=validate.Length(1, 2000),
                          metadata={"description": "Why this period: the purpose or the law"})
    schedule = fields.String(load_default="@daily", validate=_schedule,
                             metadata={"description": "cron in UTC (5 fields, or 6 with seconds last), or @daily"})


class RetentionPolicyUpdate(Schema):
    retain_for = fields.String(validate=_duration)
    action = fields.String(validate=validate.OneOf(ACTIONS))
    basis = fields.String(validate=validate.Length(1, 2000))
    schedule = fields.String(validate=_schedule)


class RetentionPolicyQuery(Schema):
    store = fields.String(load_default=None)
    category = fields.String(load_default=None)
    enabled = fields.Boolean(load_default=None)


class RetentionLastRunOut(Schema):
    run = fields.String()
    state = fields.String()
    run_state = fields.String()
    finished_at = fields.DateTime()
    count = fields.Integer()
    cutoff = fields.DateTime()


class RetentionPolicyOut(Schema):
    key = fields.String()
    store = fields.String()
    category = fields.String()
    origin = fields.String(metadata={"enum": ["api", "config"]})
    enabled = fields.Boolean()
    version = fields.Integer()
    retain_for = fields.String()
    action = fields.String()
    basis = fields.String()
    schedule = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    last_run = fields.Nested(RetentionLastRunOut, allow_none=True)


class RetentionVersionOut(Schema):
    version = fields.Integer()
    retain_for = fields.String()
    action = fields.String()
    basis = fields.String()
    schedule = fields.String()
    created_at = fields.DateTime()
    created_by = fields.String()


class RetentionRunIn(Schema):
    policy = fields.String(load_default=None, validate=KEY, metadata={"description": "default: every enabled policy"})
    dry_run = StrictBool(load_default=False)
    from_dry_run = fields.String(load_default=None, validate=validate.Length(36, 36),
                                 metadata={"description": "run exactly what this dry run previewed (same cutoffs)"})


class RetentionRunQuery(Schema):
    policy = fields.String(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(RUN_STATES))
    dry_run = fields.Boolean(load_default=None)
    trigger = fields.String(load_default=None, validate=validate.OneOf(TRIGGERS))


class RetentionStepOut(Schema):
    policy = fields.String()
    policy_version = fields.Integer()
    store = fields.String()
    category = fields.String()
    action = fields.String()
    retain_for = fields.String()
    cutoff = fields.DateTime()
    state = fields.String(metadata={"enum": ["pending", "running", "done", "held", "skipped", "failed"]})
    count = fields.Integer(metadata={"description": "destroyed so far (a dry run: would destroy)"})
    batches = fields.List(fields.Integer(), allow_none=True, metadata={"description": "count of each batch"})
    batch_count = fields.Integer()
    in_flight = fields.Integer(metadata={"description": "in batches not yet confirmed by the store"})
    key_digest = fields.String(allow_none=True)
    skipped = fields.Dict(allow_none=True, metadata={"description": "what legal holds or a lock kept, and why"})
    error = fields.String(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class RetentionRunOut(Schema):
    id = fields.String()
    policy = fields.String(allow_none=True)
    dry_run = fields.Boolean()
    trigger = fields.String()
    requested_by = fields.String()
    state = fields.String(metadata={"enum": list(RUN_STATES)})
    as_of = fields.DateTime()
    from_dry_run = fields.String(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    certificate = fields.Boolean(metadata={"description": "whether GET .../certificate has one"})
    certificate_sha256 = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(RetentionStepOut))
    totals = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()))
