"""Request and response schemas of the retention API (unknown fields are rejected)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from retention.models import ACTIONS, RUN_STATES, TRIGGERS
from retention.periods import check_schedule, parse_duration
from service.fields import Text

KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,99}$", error="use 1-100 lowercase letters, digits, '_', '.', '-'")


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
    key = Text(100, load_default=None, validate=KEY, metadata={"description": "default: <store>.<category>"})
    store = Text(100, required=True)
    category = Text(100, required=True)
    retain_for = Text(40, required=True, validate=_duration,
                      metadata={"description": "ISO 8601 duration: P180D, P7Y, P1Y6M, PT12H"})
    action = Text(10, load_default="delete", validate=validate.OneOf(ACTIONS))
    basis = Text(2000, required=True, multiline=True,
                 metadata={"description": "Why this period: the purpose or the law"})
    schedule = Text(100, load_default="@daily", validate=_schedule,
                    metadata={"description": "cron in UTC (5 fields, or 6 with seconds last), or @daily"})


class RetentionPolicyUpdate(Schema):
    retain_for = Text(40, validate=_duration)
    action = Text(10, validate=validate.OneOf(ACTIONS))
    basis = Text(2000, multiline=True)
    schedule = Text(100, validate=_schedule)


class RetentionPolicyQuery(Schema):
    store = Text(100, load_default=None)
    category = Text(100, load_default=None)
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
    policy = Text(100, load_default=None, validate=KEY, metadata={"description": "default: every enabled policy"})
    dry_run = StrictBool(load_default=False)
    from_dry_run = Text(36, min_length=36, load_default=None,
                        metadata={"description": "run exactly what this dry run previewed (same cutoffs)"})


class RetentionRunQuery(Schema):
    policy = Text(100, load_default=None)
    state = Text(20, load_default=None, validate=validate.OneOf(RUN_STATES))
    dry_run = fields.Boolean(load_default=None)
    trigger = Text(20, load_default=None, validate=validate.OneOf(TRIGGERS))


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
