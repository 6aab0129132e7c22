"""Notice campaigns: only after an assessment and a dry run, one notice per reachable person through the mail
outbox, at most once per campaign even when an attempt dies half-way, one real campaign per assessment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from incidents import campaigns
from incidents.models import AffectedSubject, Campaign, Delivery
from service.mail.message import read
from service.mail.models import MailMessage
from tests.incidents.test_assessment import SCOPE, _seed, _window

MESSAGES = {"en": {"subject": "About your account", "text": "A storage bucket was public.\n\nChange your password."},
            "zh": {"subject": "关于您的账户", "text": "存储桶曾被公开。"}}
ADDRESSES = {"ada@example.com", "bo@example.com", "cy@example.com", "dee@example.com"}


def _assessed(client, headers, opened, records):
    _seed(records)
    since, until = _window()
    made = opened(occurred_from=since.isoformat(), occurred_until=until.isoformat(), scope=SCOPE)
    url = f"/v1/incidents/{made['id']}"
    return made, url


def _post(client, headers, url, **data):
    return client.post(f"{url}/campaigns", headers=headers, json={"messages": MESSAGES, **data})


def _recipients(inc_app, campaign_id):
    keys = inc_app.extensions["keys"]
    with inc_app.extensions["db"].sessions() as session:
        rows = session.scalars(select(MailMessage).join(Delivery, Delivery.mail_id == MailMessage.id)
                               .where(Delivery.campaign_id == campaign_id)).all()
        return [read(keys, r) for r in rows], [r.state for r in rows]


def test_dry_run_first_then_one_notice_per_reachable_person(client, headers, opened, records, inc_app):
    made, url = _assessed(client, headers, opened, records)
    r = _post(client, headers, url)
    assert r.status_code == 422 and "run" in r.json["errors"]["json"]  # a campaign before an assessment
    run = client.post(f"{url}/assessment-runs", headers=headers).json
    r = _post(client, headers, url, dry_run=False)
    assert r.status_code == 422 and "dry_run" in r.json["errors"]["json"]
    dry = _post(client, headers, url)
    assert dry.status_code == 202, dry.json
    assert dry.json["state"] == "succeeded" and dry.json["run"] == run["id"]
    assert dry.json["counts"] | {"mail": {}} == {"people": 5, "reachable": 4, "unreachable": 1, "notices": 0,
                                                 "mail": {}}
    changed = {**MESSAGES, "en": {"subject": "Other", "text": "other"}}
    r = client.post(f"{url}/campaigns", headers=headers, json={"messages": changed, "dry_run": False})
    assert r.status_code == 422 and "dry_run" in r.json["errors"]["json"]  # previewed with other messages
    real = _post(client, headers, url, dry_run=False)
    assert real.status_code == 202, real.json
    got = client.get(f"{url}/campaigns/{real.json['id']}", headers=headers).json
    assert got["state"] == "succeeded" and got["counts"]["notices"] == 4 and got["counts"]["mail"] == {"sent": 4}
    contents, _ = _recipients(inc_app, real.json["id"])
    assert sorted(c.recipient for c in contents) == sorted(ADDRESSES)
    assert all(c.subject == "About your account" and "Change your password." in c.text for c in contents)
    assert all(made["id"] in c.text for c in contents)  # the reference
    assert _post(client, headers, url, dry_run=False).status_code == 409  # one real campaign per assessment
    actions = [e["action"] for e in client.get(f"{url}/timeline", headers=headers).json]
    assert actions.count("incident.campaign_finished") == 2
    for data in ({"state": "assessed", "risk": "high_risk", "risk_reasoning": "emails exposed"},
                 {"state": "contained"}, {"state": "closed", "root_cause": "public bucket", "measures": "locked"}):
        assert client.patch(url, headers=headers, json={"reason": "progress", **data}).status_code == 200
    token = client.get(f"{url}/record", headers=headers).get_data(as_text=True)
    claims = inc_app.extensions["keys"].signer.verify(token)
    assert [c["id"] for c in claims["campaigns"]] == [real.json["id"]]
    assert claims["campaigns"][0]["counts"]["notices"] == 4 and claims["campaigns"][0]["counts"]["mail"] == {"sent": 4}


def test_a_resumed_campaign_notifies_nobody_twice(client, headers, opened, records, inc_app):
    made, url = _assessed(client, headers, opened, records)
    client.post(f"{url}/assessment-runs", headers=headers)
    assert _post(client, headers, url).status_code == 202
    db, rt = inc_app.extensions["db"], inc_app.extensions["runtime"]
    # A real campaign whose first attempt died after committing one batch: one person queued, lease expired.
    with db.session() as session:
        first = session.scalars(select(AffectedSubject).where(AffectedSubject.has_contact.is_(True))
                                .order_by(AffectedSubject.id)).first()
        camp = campaigns.create(session, _incident(session, made["id"]), "key:test",
                                {"messages": MESSAGES, "dry_run": False, "per_minute": None})
        campaign_id = camp.id
    with db.session() as session:
        from service.mail import outbox

        row = outbox.queue(session, rt, kind="notice", recipient="ada@example.com", locale="en", ref=campaign_id,
                           context={"request_id": made["id"], "link": None, "notice_subject": "s",
                                    "notice_text": "t"})
        session.add(Delivery(campaign_id=campaign_id, subject_id=first.id, mail_id=row.id))
        session.execute(update(Campaign).values(state="running", attempts=1,
                                                lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert campaigns.execute(rt, campaign_id) == "succeeded"
    assert campaigns.execute(rt, campaign_id) is None  # done: a second delivery of the job does nothing
    with db.sessions() as session:
        per_person = session.execute(select(Delivery.subject_id, func.count()).where(
            Delivery.campaign_id == campaign_id).group_by(Delivery.subject_id)).all()
    assert len(per_person) == 4 and all(n == 1 for _, n in per_person)
    contents, states = _recipients(inc_app, campaign_id)
    assert sorted(c.recipient for c in contents) == sorted(ADDRESSES) and states == ["sent"] * 4


def _incident(session, incident_id):
    from incidents.models import Incident

    return session.get(Incident, incident_id)


def test_the_throttle_spaces_the_notices(client, headers, opened, records):
    import time

    _, url = _assessed(client, headers, opened, records)
    client.post(f"{url}/assessment-runs", headers=headers)
    assert _post(client, headers, url).status_code == 202
    started = time.monotonic()
    real = _post(client, headers, url, dry_run=False, per_minute=120)  # 4 people at 2 a second: 2 s at least
    assert real.status_code == 202 and real.json["counts"]["notices"] == 4
    assert time.monotonic() - started >= 2
    assert _post(client, headers, url, dry_run=False, per_minute=0).status_code == 422
