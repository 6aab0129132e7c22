"""Consent fixtures: an app with a policy in effect, and helpers to post consents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.dsar.conftest import inline_app_with  # noqa: F401 - the dsar tests' fixture: an app on the demo estate

ALL = "admin,consent:read,consent:write"

POLICY = {
    "key": "privacy",
    "title": "Mi Home privacy policy",
    "purposes": [
        {"key": "core", "description": "Operate the device and the account", "required": True,
         "lawful_basis": "contract", "pii_categories": ["contact", "device"]},
        {"key": "analytics", "description": "Product analytics", "retention": "P2Y"},
        {"key": "ads", "description": "Personalised advertising", "honors_gpc": True,
         "third_party": "AdPartner Ltd."},
    ],
}


@pytest.fixture
def headers(make_key) -> dict[str, str]:
    return make_key("app-a", ALL)


@pytest.fixture
def policy(client, headers) -> dict[str, Any]:
    r = client.post("/v1/policies", json=POLICY, headers=headers)
    assert r.status_code == 201, r.json
    r = client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "v1 text", "material": True},
                    headers=headers)
    assert r.status_code == 201, r.json
    return POLICY


@pytest.fixture
def consent(client, headers, policy) -> Callable[..., Any]:
    """consent("u1", analytics=True) posts a consent to the current version and returns the response."""

    def post(subject: str, version: str = "1.0", hdrs: dict[str, str] | None = None, **answers: bool) -> Any:
        body = {"subject_id": subject, "policy": "privacy", "version": version,
                "purposes": {"core": True, **answers}, "channel": "android", "locale": "en-GB"}
        return client.post("/v1/consents", json=body, headers=hdrs or headers)

    return post


def status(client, headers, subject: str) -> dict[str, Any]:
    r = client.get(f"/v1/consents/status?subject_id={subject}&policy=privacy", headers=headers)
    assert r.status_code == 200, r.json
    return r.json


LEDGER_SUBJECTS = 90


@pytest.fixture
def long_ledger(consent) -> None:
    """LEDGER_SUBJECTS subjects with chains of 1 to 6 events (about 300 events), posted through the API."""
    for n in range(LEDGER_SUBJECTS):
        for i in range(1 + n % 6):
            r = consent(f"subject-{n}", analytics=i % 2 == 0)
            assert r.status_code == 201, r.json
