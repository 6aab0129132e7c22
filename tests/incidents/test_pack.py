"""The incidents' part of the audit evidence pack: each incident of the period with its clocks met or not, the
authority's notification and the signed record's digest; no free text or names; the pack still verifies."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta

NAME = "Ada Lovelace"  # in the facts' free text and as who notified: must not reach the pack


def test_the_pack_holds_each_incident_with_its_clocks_and_no_free_text(client, headers, opened, inc_app, tmp_path):
    closed = opened(title=f"{NAME}'s laptop stolen", description=f"{NAME} reported it at the station")
    other = opened(jurisdictions=["GDPR"])
    url = f"/v1/incidents/{closed['id']}"
    when = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    r = client.post(f"{url}/notifications", json={"jurisdiction": "GDPR", "obligation": "authority",
                                                  "kind": "notified", "at": when, "reference": "DPC-2026-7",
                                                  "notified_by": NAME}, headers=headers)
    assert r.status_code == 201, r.json
    for data in ({"state": "assessed", "risk": "risk", "risk_reasoning": f"{NAME}'s notes"},
                 {"state": "contained"}, {"state": "closed", "root_cause": "theft", "measures": "disk encryption"}):
        assert client.patch(url, json={"reason": "progress", **data}, headers=headers).status_code == 200

    out = tmp_path / "pack.zip"
    cli = inc_app.test_cli_runner()
    result = cli.invoke(args=["evidence", "export", "--from", "2020-01-01", "--to", "2099-12-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    verified = cli.invoke(args=["evidence", "verify", str(out)])
    assert verified.exit_code == 0, verified.output

    with zipfile.ZipFile(out) as zf:
        rows = {row["id"]: row for row in map(json.loads, zf.read("incidents/incidents.jsonl").splitlines())}
        summary = json.loads(zf.read("incidents/summary.json"))
        index = json.loads(zf.read("index.json"))
        text = b"".join(zf.read(name) for name in zf.namelist()).decode()
    assert set(rows) == {closed["id"], other["id"]}
    row = rows[closed["id"]]
    assert row["state"] == "closed" and row["risk"] == "risk" and row["recordSha256"]
    authority = next(o for o in row["obligations"] if o["obligation"] == "authority")
    assert authority["applies"] and authority["onTime"] is True and authority["metBy"] == "notified"
    assert row["notifications"] == [{"jurisdiction": "GDPR", "obligation": "authority", "kind": "notified",
                                     "at": authority["metAt"], "reference": "DPC-2026-7", "reasoned": False}]
    assert len(row["timeline"]) >= 5 and all(e["action"].startswith("incident.") for e in row["timeline"])
    assert summary["incidents"] == 2 and summary["byState"] == {"closed": 1, "open": 1}
    assert summary["metOnTime"] == 1 and summary["authorityNotifications"] == 1 and summary["signedRecords"] == 1
    section = next(s for s in index["sections"] if s["name"] == "incidents")
    assert {c["clause"] for c in section["clauses"]} == {"6.13", "6.13.1.5"}
    assert NAME not in text and "laptop" not in text and "station" not in text
