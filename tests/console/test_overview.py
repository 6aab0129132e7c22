"""The overview's programme figures: on-time completion and median time to answer over 90 days, retention's
records destroyed per policy over 30 days, the ledger's last verification and the stores' health, as SVG bars
(attributes only: no inline style), tables and CSV; an operator limited to an app counts only its requests."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import update

from dsar.models import DsarRequest
from service.db import utcnow


def submit(client, headers, n: int, kind: str = "access") -> str:
    answer = client.post("/v1/requests", headers=headers, json={
        "type": kind, "jurisdiction": "GDPR", "subject": {"email": f"o{n}@example.com"},
        "contact_email": f"o{n}@example.com"})
    assert answer.status_code == 202
    return answer.json["id"]


def test_the_overview_shows_the_programme_as_charts_tables_and_csv(app, client, make_key, make_operator):
    shop, other = make_key("shop", "dsar:submit,dsar:manage"), make_key("other", "dsar:submit,dsar:manage")
    now = utcnow()
    # shop: answered in 2, 4 and 10 days (the last after its deadline of 8 days), one still open past its due
    # date; other: one answered on time. Due dates all within the last 90 days.
    plan = [(shop, "access", 2, 8), (shop, "access", 4, 8), (shop, "erasure", 10, 8), (shop, "erasure", None, 8),
            (other, "access", 1, 8)]
    ids = [submit(client, headers, n, kind) for n, (headers, kind, _, _) in enumerate(plan)]
    with app.extensions["db"].session() as session:
        for n, (request_id, (_, _, took, allowed)) in enumerate(zip(ids, plan, strict=True)):
            received = now - timedelta(days=20 + n)
            values = {"received_at": received, "due_at": received + timedelta(days=allowed)}
            if took is not None:
                values |= {"status": "completed", "closed_at": received + timedelta(days=took)}
            session.execute(update(DsarRequest).where(DsarRequest.id == request_id).values(**values))
    headers = make_key("ops", "platform:retention")
    assert client.post("/v1/retention/policies", headers=headers, json={
        "store": "uploads", "category": "avatars", "retain_for": "P30D", "basis": "test"}).status_code == 201
    run = client.post("/v1/retention/runs", headers=headers, json={"policy": "uploads.avatars"})
    assert run.status_code == 202
    report = client.get(f"/v1/retention/runs/{run.json['id']}", headers=headers).json
    destroyed = sum(step["count"] for step in report["steps"])  # whatever the store held past its period
    assert app.test_cli_runner().invoke(args=["ledger", "verify"]).exit_code in (0, 1)

    op = make_operator("viewer")
    page = op.browser.get("/console/")
    assert page.status_code == 200 and page.text.count("<svg") >= 3 and "<style" not in page.text
    assert " style=" not in page.text
    assert "60.0 %" in page.text and "3 of 5" in page.text  # 3 of 5 due answered on time
    assert '<span class="tag overdue">Overdue</span>' in page.text  # marked in words, not by colour alone
    assert "Last verification" in page.text and "uploads.avatars" in page.text
    rows = {(r[0], r[1]): r[2] for r in csv.reader(io.StringIO(op.browser.get("/console/overview.csv").text))}
    assert rows[("completion_90_days", "due")] == "5" and rows[("completion_90_days", "on_time")] == "3"
    assert rows[("completion_90_days", "rate_percent")] == "60.0"
    assert rows[("median_days_to_close_90_days", "access")] == "2.0"  # 1, 2, 4
    assert rows[("median_days_to_close_90_days", "erasure")] == "10.0"
    assert rows[("retention_destroyed_30_days", "uploads.avatars")] == str(destroyed)
    assert rows[("retention_runs_30_days", "succeeded")] == "1"
    assert rows[("store_health", "uploads")] == "ok"
    assert rows[("ledger", "last_verification")] in ("intact", "broken", "failed")
    assert rows[("open", "overdue")] == "1"

    limited = make_operator("viewer", apps=("other",))
    mine = {(r[0], r[1]): r[2] for r in csv.reader(io.StringIO(limited.browser.get("/console/overview.csv").text))}
    assert mine[("completion_90_days", "due")] == "1" and ("median_days_to_close_90_days", "erasure") not in mine
    assert mine[("open", "overdue")] == "0"


def test_the_90_day_figures_are_kept_a_minute_and_say_so(app, client, make_key, make_operator):
    shop = make_key("shop", "dsar:submit,dsar:manage")
    now = utcnow()
    first, second = submit(client, shop, 1, "access"), submit(client, shop, 2, "access")
    with app.extensions["db"].session() as session:
        received = now - timedelta(days=20)
        session.execute(update(DsarRequest).where(DsarRequest.id.in_((first, second))).values(
            received_at=received, due_at=received + timedelta(days=8)))
        session.execute(update(DsarRequest).where(DsarRequest.id == first).values(
            status="completed", closed_at=received + timedelta(days=2)))
    op = make_operator("viewer")

    def figures() -> dict[tuple[str, str], str]:
        return {(r[0], r[1]): r[2] for r in csv.reader(io.StringIO(op.browser.get("/console/overview.csv").text))}

    before = figures()
    assert before[("completion_90_days", "on_time")] == "1" and before[("open", "total")] == "1"
    assert "Figures over 90 days as of" in op.browser.get("/console/").text
    with app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).where(DsarRequest.id == second).values(
            status="completed", closed_at=received + timedelta(days=3)))
    kept = figures()
    assert kept[("completion_90_days", "on_time")] == "1"  # the minute's figures...
    assert kept[("figures_90_days", "as_of")] == before[("figures_90_days", "as_of")]
    assert kept[("open", "total")] == "0"  # ...while the open counts are read on every load
    app.extensions["console_figures"][0].clear()  # the minute is over
    assert figures()[("completion_90_days", "on_time")] == "2"
