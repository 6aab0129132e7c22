"""What each person gets: the notice in the language they last gave the app's consent in, with a link to the
privacy centre's page about the incident, which shows the message and the Art. 34(2) facts and nothing internal."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import text

from incidents import notices
from tests.incidents.test_assessment import SCOPE, _seed, _window
from tests.incidents.test_campaigns import MESSAGES, _post, _recipients

POLICY = {"key": "privacy", "title": "Policy", "purposes": [{"key": "core", "description": "Run the service",
                                                              "required": True, "lawful_basis": "contract"}]}
LINK = re.compile(r"http://\S+/privacy/app-a/notices/\S+")


def _consent(client, headers, subject, locale):
    r = client.post("/v1/consents", headers=headers, json={"subject_id": subject, "policy": "privacy",
                                                          "version": "1", "purposes": {"core": True},
                                                          "channel": "web", "locale": locale})
    assert r.status_code == 201, r.json


def _policy(client, headers):
    assert client.post("/v1/policies", json=POLICY, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True},
                       headers=headers).status_code == 201


def _campaign(client, headers, opened, records):
    _seed(records)
    since, until = _window()
    made = opened(occurred_from=since.isoformat(), occurred_until=until.isoformat(), scope=SCOPE)
    url = f"/v1/incidents/{made['id']}"
    assert client.patch(url, headers=headers, json={
        "reason": "known now", "consequences": "Someone may try to sign in as you.",
        "measures": "We closed the bucket and reset the keys."}).status_code == 200
    assert client.post(f"{url}/assessment-runs", headers=headers).status_code == 202
    assert _post(client, headers, url).status_code == 202
    real = _post(client, headers, url, dry_run=False)
    assert real.status_code == 202, real.json
    return made, real.json


def test_each_person_gets_their_language_and_the_page_link(client, key, opened, records, inc_app):
    manage, consent = key("app-a"), key("app-a", "admin,consent:write")
    _policy(client, consent)
    _consent(client, consent, "u1", "en-GB")
    _consent(client, consent, "u1", "zh-CN")  # the latest wins: Ada reads the app in Chinese now
    _consent(client, consent, "u2", "fr-FR")  # a language the campaign has no message in: its default
    _consent(client, consent, "u3", "en")
    other = key("app-b", "admin,consent:write")
    _policy(client, other)
    _consent(client, other, "u3", "zh-Hans")  # another app's consent says nothing about this app's user
    made, real = _campaign(client, manage, opened, records)
    contents, states = _recipients(inc_app, real["id"])
    assert states == ["sent"] * 4
    by_address = {c.recipient: c for c in contents}
    assert by_address["ada@example.com"].subject == MESSAGES["zh"]["subject"]
    assert MESSAGES["zh"]["text"] in by_address["ada@example.com"].text
    for address in ("bo@example.com", "cy@example.com", "dee@example.com"):  # dee: no user id, no consent
        assert by_address[address].subject == MESSAGES["en"]["subject"], address
    links = {address: LINK.findall(c.text) for address, c in by_address.items()}
    assert all(len(found) == 1 for found in links.values()), links
    assert links["ada@example.com"][0].endswith("?lang=zh_Hans")
    assert links["bo@example.com"][0].endswith("?lang=en")
    assert by_address["ada@example.com"].html and links["ada@example.com"][0] in by_address["ada@example.com"].html
    # One link per campaign and language: it names no person.
    assert len({found[0] for found in links.values()}) == 2

    link = urlsplit(links["ada@example.com"][0])
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 303 and "lang=zh_Hans" in page.headers["Set-Cookie"]
    target = page.headers["Location"]
    assert "?" not in target
    shown = client.get(target)
    assert shown.status_code == 200
    body = shown.get_data(as_text=True)
    assert MESSAGES["zh"]["subject"] in body and "我们了解的情况" in body and made["id"] in body
    assert "Someone may try to sign in as you." in body and "We closed the bucket" in body
    assert "contact" in body and "orders" in body  # the kinds of data, from the scope
    assert "Photos bucket was public" not in body  # the description is the register's, not the public's
    assert "crm" not in body and "billing" not in body  # nor which internal systems
    assert [a for a in by_address if re.search(rf"(?<![\w.]){re.escape(a)}", body)] == []  # nor whom it went to

    english = inc_app.test_client()
    english.get(target + "?lang=en")
    body = english.get(target).get_data(as_text=True)
    assert MESSAGES["en"]["subject"] in body and "What you can do" in body and 'lang="en"' in body


def test_the_page_is_only_behind_a_real_token_of_a_sent_campaign(client, key, opened, records, inc_app):
    _, real = _campaign(client, key("app-a"), opened, records)
    key("app-b")
    keys = inc_app.extensions["keys"]
    with inc_app.extensions["db"].sessions() as session:
        app_a = session.scalar(text("SELECT id FROM apps WHERE slug = 'app-a'"))
        app_b = session.scalar(text("SELECT id FROM apps WHERE slug = 'app-b'"))
        dry = session.scalar(text(
            "SELECT id FROM incident_campaigns WHERE dry_run = :t"), {"t": True})
    good = notices.token(keys, app_a, real["id"])
    assert client.get(f"/privacy/app-a/notices/{good}").status_code == 200
    assert client.get(f"/privacy/app-b/notices/{good}").status_code == 404  # another app's address
    assert client.get(f"/privacy/app-b/notices/{notices.token(keys, app_b, real['id'])}").status_code == 404
    forged = good[:-1] + ("1" if good[-1] == "0" else "0")
    assert client.get(f"/privacy/app-a/notices/{forged}").status_code == 404
    assert client.get(f"/privacy/app-a/notices/{real['id']}").status_code == 404  # no MAC
    assert client.get(f"/privacy/app-a/notices/{notices.token(keys, app_a, dry)}").status_code == 404  # a preview
    assert client.get(f"/privacy/app-a/notices/{notices.token(keys, app_a, 'x' * 36)}").status_code == 404
