"""The console's front page: open requests by state and type, overdue and due within a week (the programme's
charts come later; this page is where they go)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from console import queue
from console.auth import READ, app_filter, require
from console.request_pages import words
from console.web import blp, page
from service.db import utcnow


@blp.get("/")
@require(READ)
def overview() -> Any:
    with current_app.extensions["db"].sessions() as session:
        counts = queue.overview(session, app_filter())
    # "due in the next 7 days" counts to this moment a week on; the queue's day filter ends that day
    week = (utcnow() + timedelta(days=7)).date().isoformat()
    return page("console/overview.html", counts=counts, words=words(), due_week=week)
