"""The console's front page: open requests by state and type, overdue and due within a week, on-time completion
and median time to close over 90 days, retention's last 30 days, the ledger's last check and the stores' health;
charts drawn on the server as SVG, the same numbers as tables and as CSV (/console/overview.csv)."""

from __future__ import annotations

import csv
import io
import threading
from datetime import datetime, timedelta
from typing import Any

from cachetools import TTLCache
from flask import Flask, Response, current_app

from console import programme, queue
from console.auth import READ, app_filter, require
from console.request_pages import words
from console.web import blp, page
from service.config import env_int
from service.db import utcnow

EXTENSION = "console_figures"


def install(app: Flask) -> None:
    """The cache of the 90-day figures (CONSOLE_FIGURES_SECONDS, default 60; 0: none), one per process."""
    seconds = env_int(app.config["SETTINGS"].env, "CONSOLE_FIGURES_SECONDS", 60)
    app.extensions[EXTENSION] = (TTLCache(maxsize=256, ttl=seconds), threading.Lock()) if seconds else None


def _programme(session: Any, limited: tuple[int, ...] | None, now: datetime) -> dict[str, Any]:
    """On-time rate and medians over 90 days, kept a minute per set of apps: they barely move in one, and are
    half the overview's database time (the medians sort every request answered in the window)."""
    cached = current_app.extensions.get(EXTENSION)
    hit = None
    if cached is not None:
        with cached[1]:
            hit = cached[0].get(limited)
    if hit is None:
        hit = {"completion": programme.completion(session, limited, now),
               "median": programme.median_close(session, limited, now), "as_of": now}
        if cached is not None:
            with cached[1]:
                cached[0][limited] = hit
    return hit


def figures() -> dict[str, Any]:
    """Every number the overview shows, each from one grouped query (the 90-day ones cached a minute)."""
    now, limited = utcnow(), app_filter()
    with current_app.extensions["db"].sessions() as session:
        return {"counts": queue.overview(session, limited, now),
                **_programme(session, limited, now),
                "retention": programme.destroyed(session, now),
                "ledger": programme.ledger(session),
                "health": current_app.extensions["stores"].health()}


@blp.get("/")
@require(READ)
def overview() -> Any:
    # "due in the next 7 days" counts to this moment a week on; the queue's day filter ends that day
    week = (utcnow() + timedelta(days=7)).date().isoformat()
    return page("console/overview.html", **figures(), words=words(), due_week=week)


@blp.get("/overview.csv")
@require(READ)
def overview_csv() -> Any:
    """The overview's numbers as rows of (section, item, value): no personal data."""
    f = figures()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("section", "item", "value"))
    counts = f["counts"]
    writer.writerows([("open", "total", counts.open), ("open", "overdue", counts.overdue),
                      ("open", "due_in_7_days", counts.due_soon)])
    writer.writerows(("open_by_state", k, v) for k, v in sorted(counts.by_state.items()))
    writer.writerows(("open_by_type", k, v) for k, v in sorted(counts.by_type.items()))
    done = f["completion"]
    writer.writerows([("completion_90_days", "due", done.due), ("completion_90_days", "on_time", done.on_time),
                      ("completion_90_days", "rate_percent", "" if done.rate is None else done.rate)])
    writer.writerows(("median_days_to_close_90_days", k, v) for k, v in sorted(f["median"].items()))
    writer.writerow(("figures_90_days", "as_of", f["as_of"].isoformat()))
    writer.writerows(("retention_runs_30_days", k, v) for k, v in sorted(f["retention"]["runs"].items()))
    writer.writerows(("retention_destroyed_30_days", k, v) for k, v in f["retention"]["per_policy"].items())
    ledger = f["ledger"]
    writer.writerow(("ledger", "last_verification", "" if ledger is None else ledger["status"]))
    writer.writerow(("ledger", "last_verification_at", "" if ledger is None else ledger["started_at"].isoformat()))
    writer.writerows(("store_health", k, v) for k, v in sorted(f["health"].items()))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="overview.csv"'})
