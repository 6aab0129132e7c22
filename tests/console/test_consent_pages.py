"""Consent in the console: an app's policies and versions, a new version published (material) by an admin
through consent.policies with the API's rules, audited by operator; the rates per purpose and the GPC share
counted from the ledger, as a table, an SVG chart without inline style, and CSV; app limits."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from consent.models import PolicyVersion
from service.audit import AuditEvent
from tests.consent.conftest import POLICY
from tests.console.conftest import post_form


@pytest.fixture
def shop(client, make_key):
    headers = make_key("shop", "admin,consent:read,consent:write")
    assert client.post("/v1/policies", json=POLICY, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", headers=headers,
                       json={"version": "1.0", "text": "v1", "material": True}).status_code == 201

    def consent(subject: str, gpc: bool = False, **answers: bool) -> None:
        body = {"subject_id": subject, "policy": "privacy", "version": "1.0", "gpc": gpc,
                "purposes": {"core": True, **answers}, "channel": "web", "locale": "en-GB"}
        answer = client.post("/v1/consents", json=body, headers=headers)
        assert answer.status_code == 201, answer.json

    consent("u1", analytics=True, ads=True)
    consent("u2", analytics=False, ads=False)
    consent("u3", gpc=True, analytics=True, ads=True)  # GPC denies ads
    withdrawn = client.post("/v1/consents/withdraw", headers=headers,
                            json={"subject_id": "u1", "policy": "privacy", "purposes": ["analytics"]})
    assert withdrawn.status_code in (200, 201), withdrawn.json
    return headers


def test_the_consent_page_counts_purposes_and_gpc_as_table_chart_and_csv(app, shop, make_operator):
    viewer = make_operator("viewer")
    page = viewer.browser.get("/console/consent?app=shop")
    assert page.status_code == 200 and "<svg" in page.text and "<style" not in page.text
    assert 'role="img"' in page.text and "Publish a new version" not in page.text
    rows = list(csv.reader(io.StringIO(viewer.browser.get("/console/consent/rates.csv?app=shop").text)))
    assert rows[0] == ["week", "purpose", "granted", "denied", "withdrawn"]
    per_purpose: dict[str, list[int]] = {}
    for row in rows[1:]:
        if not row:
            break
        sums = per_purpose.setdefault(row[1], [0, 0, 0])
        for i in range(3):
            sums[i] += int(row[2 + i])
    # 3 consents and 1 withdrawal (its state: analytics off, ads still on, core on)
    assert per_purpose == {"core": [3, 0, 0], "analytics": [2, 1, 1], "ads": [1, 2, 0]}
    weeks = rows[rows.index([]) + 2:]
    assert sum(int(r[1]) for r in weeks) == 4 and sum(int(r[2]) for r in weeks) == 1


def test_an_admin_publishes_a_material_version_and_errors_stay_by_their_field(app, shop, make_operator):
    admin = make_operator("admin")
    page = "/console/consent?app=shop&policy=privacy"
    missing = post_form(admin.browser, page, "/console/consent/versions",
                        {"app": "shop", "policy": "privacy", "version": "2.0", "text": "v2"})
    assert missing.status_code == 422 and 'id="material-error"' in missing.text
    taken = post_form(admin.browser, page, "/console/consent/versions",
                      {"app": "shop", "policy": "privacy", "version": "1.0", "text": "v1 again", "material": "no"})
    assert taken.status_code == 409 and 'id="version-error"' in taken.text
    done = post_form(admin.browser, page, "/console/consent/versions",
                     {"app": "shop", "policy": "privacy", "version": "2.0", "text": "v2", "material": "yes"})
    assert done.status_code == 303
    with app.extensions["db"].sessions() as session:
        version = session.scalar(select(PolicyVersion).where(PolicyVersion.version == "2.0"))
        assert version.material is True
        actors = session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "policy.version_created"))
        assert list(actors)[-1] == f"operator:{admin.id}"


def test_an_operator_limited_to_an_app_sees_no_other_apps_consent(app, shop, make_key, make_operator):
    make_key("other", "consent:read")
    limited = make_operator("admin", apps=("other",))
    assert limited.browser.get("/console/consent?app=shop").status_code == 404
    assert limited.browser.get("/console/consent/rates.csv?app=shop").status_code == 404
    refused = post_form(limited.browser, "/console/consent", "/console/consent/versions",
                        {"app": "shop", "policy": "privacy", "version": "3.0", "text": "v3", "material": "no"})
    assert refused.status_code == 404
    assert "This app has no policy yet." in limited.browser.get("/console/consent").text
