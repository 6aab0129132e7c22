"""`flask governance ...`: ROPA export, snapshots, findings (exit status), assessments and the drift check."""

from __future__ import annotations

import json
from pathlib import Path

from tests.governance.conftest import Api, purpose, retention
from tests.governance.test_assessments import BASE, approved
from tests.governance.test_ropa import CONTROLLER, EXPECTED_ACTIVITIES, configure


def run(app, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["governance", *args])
    return result.exit_code, result.stdout


def test_ropa_export_and_snapshot(app, api: Api, demo, tmp_path: Path):
    configure(api, demo)
    code, out = run(app, "ropa", "--format", "json", "--out", str(tmp_path / "ropa.json"))
    assert code == 0
    record = json.loads((tmp_path / "ropa.json").read_text())
    assert record["controller"] == CONTROLLER and record["activities"] == EXPECTED_ACTIVITIES
    code, out = run(app, "ropa", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("key,app,policy,purpose") and len(out.splitlines()) == 4
    code, out = run(app, "snapshot")
    assert code == 0 and "3 activities" in out
    assert api.get("/v1/governance/ropa/snapshots")[0]["id"] in out


def test_findings_exit_status(app, api: Api, demo):
    code, out = run(app, "findings")
    assert code == 1 and "category_without_retention" in out and "uploads/avatars" in out
    code, out = run(app, "findings", "--json")
    assert code == 1 and len(json.loads(out)) == 14
    api.post("/v1/policies", {"key": "p", "title": "P", "purposes": [
        purpose("all", ["contact", "orders", "device_log", "photos", "location", "avatars"])]}, headers=demo)
    for store, category, action in [("cloud-photos", "contact", "delete"), ("cloud-photos", "orders", "anonymize"),
                                    ("cloud-photos", "device_log", "delete"), ("cloud-photos", "photos", "delete"),
                                    ("cloud-photos", "location", "anonymize"), ("uploads", "photos", "delete"),
                                    ("uploads", "avatars", "delete")]:
        retention(api, store, category, action=action)
    assert run(app, "findings") == (0, "")


def test_assessments_list_and_drift_check(app, api: Api, demo):
    api.post("/v1/policies", {"key": "privacy", "title": "Privacy", "purposes": [purpose("account", ["contact"])]},
             headers=demo)
    retention(api, "cloud-photos", "contact", "P1Y")
    a = approved(api)
    draft = api.post(BASE, {"app": "demo", "title": "Second"})
    code, out = run(app, "assessments")
    assert code == 0 and f"{a['id']}  approved  demo  -  Cloud Photos PIA  approved by C. Officer" in out
    assert f"{draft['id']}  draft" in out
    api.patch("/v1/retention/policies/cloud-photos.contact", {"retain_for": "P2Y"})
    code, out = run(app, "check-drift")
    assert code == 0 and out.strip() == f"{a['id']} review_needed: retention_lengthened cloud-photos/contact"
    code, out = run(app, "assessments", "--state", "review_needed")
    assert out.count("\n") == 1 and "changed: retention_lengthened cloud-photos/contact" in out
