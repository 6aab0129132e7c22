"""Mail fixtures: apps made with extra settings (SMTP_URL, retry settings), emptied afterwards, and a queued
verification-code message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from privacy import create_app
from service.mail.models import MailMessage
from service.mail.outbox import queue
from tests.conftest import _truncate

CODE = "493817"
TO = "lin.wei@example.org"


@pytest.fixture
def make_app(base_config: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**config: str) -> Flask:
        app = create_app({**base_config, **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        _truncate(app)
        app.extensions["db"].dispose()


def queue_code(app: Flask, locale: str = "zh-CN") -> str:
    """Queue (and commit) a verification-code email to TO; returns the row id."""
    rt = app.extensions["runtime"]
    with rt.db.session() as session:
        row = queue(session, rt, kind="verification_code", recipient=TO, locale=locale, ref="req-1",
                    context={"request_id": "req-1", "code": CODE, "minutes": 15})
        row_id = row.id
    return row_id


def row_of(app: Flask, row_id: str) -> Any:
    with app.extensions["db"].session() as session:
        row = session.get(MailMessage, row_id)
        session.expunge(row)
        return row
