"""DRP 1.0 from the agent's side, over HTTP: key set-up, every exercise, every status with its callback received by
a real HTTP server, revocation, and the refusals (bad signature, wrong agent or business, expired, replayed)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from dsar.agents.models import Callback, DrpRequest
from dsar.agents.sweep import sweep
from dsar.models import DsarRequest
from service.mail.models import MailMessage
from service.mail.outbox import read
from service.runtime import use_runtime
from tests.drp.conftest import API, Agent, register
from tests.dsar.conftest import person

POLICY = {"key": "privacy", "title": "Mi Home privacy", "purposes": [
    {"key": "core", "description": "Run the account", "required": True, "lawful_basis": "contract"},
    {"key": "analytics", "description": "Product analytics"},
    {"key": "ads", "description": "Personalised ads with partners", "sale_or_sharing": True}]}


def _ready(app, key_for, *agents: Agent):
    client, admin = app.test_client(), key_for(app)
    for agent in agents:
        assert register(app, client, admin, agent).status_code == 201
        assert agent.setup(client).status_code == 200
    return client, admin


def _consent(client, admin, user_id: str) -> None:
    client.post("/v1/policies", json=POLICY, headers=admin)
    client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True}, headers=admin)
    r = client.post("/v1/consents", headers=admin, json={
        "subject_id": user_id, "policy": "privacy", "version": "1", "channel": "web", "locale": "en",
        "purposes": {"core": True, "analytics": True, "ads": True}})
    assert r.status_code == 201, r.json


def _purposes(client, admin, user_id: str) -> dict[str, bool]:
    return client.get(f"/v1/consents/status?subject_id={user_id}&policy=privacy", headers=admin).json["purposes"]


def _sweep(app) -> dict[str, int]:
    with use_runtime(app.extensions["runtime"]):
        return sweep()


def _code(app, request_id: str) -> str:
    with app.extensions["db"].sessions() as session:
        row = session.scalars(select(MailMessage).where(MailMessage.ref == request_id,
                                                        MailMessage.kind == "verification_code")).first()
        return re.search(r"^\s+(\d{6})$", read(app.extensions["keys"], row).text, re.MULTILINE).group(1)


def _dsar_id(app, drp_id: str) -> str:
    with app.extensions["db"].sessions() as session:
        return session.get(DrpRequest, drp_id).dsar_request_id


# --- pair-wise key set-up and agent information -------------------------------------------------------------

def test_key_setup_issues_a_token_bound_to_the_agent(inline_app, key_for):
    a, b = Agent("AA_ONE"), Agent("AA_TWO")
    client, admin = _ready(inline_app, key_for, a, b)
    assert a.token and a.token != b.token
    with inline_app.extensions["db"].sessions() as session:  # stored only as a hash
        from dsar.agents.models import AgentToken
        assert a.token not in {t.token_hash for t in session.scalars(select(AgentToken))}
    info = client.get(f"{API}/agent/AA_ONE", headers={"Authorization": f"Bearer {a.token}"})
    assert info.status_code == 200 and info.json == {}
    assert info.headers["Cache-Control"] == "no-store" and info.headers["X-Content-Type-Options"] == "nosniff"
    other = client.get(f"{API}/agent/AA_TWO", headers={"Authorization": f"Bearer {a.token}"})
    assert other.status_code == 403 and other.json["code"] == "403"
    assert client.get(f"{API}/agent/AA_ONE").status_code == 401
    old = a.token
    assert a.setup(client).status_code == 200  # a new set-up supersedes the old token
    assert client.get(f"{API}/agent/AA_ONE", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    listed = client.get("/v1/drp/agents", headers=admin).json
    assert {x["agent_id"] for x in listed} == {"AA_ONE", "AA_TWO"}
    revoked = client.post("/v1/drp/agents/AA_ONE/revoke", json={"reason": "left the network"}, headers=admin)
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert client.get(f"{API}/agent/AA_ONE", headers={"Authorization": f"Bearer {a.token}"}).status_code == 401
    assert a.setup(client).status_code == 403


def test_key_setup_refusals_are_a_bare_403(inline_app, key_for):
    a = Agent("AA_ONE")
    client, _ = _ready(inline_app, key_for, a)
    url, plain = f"{API}/agent/AA_ONE", {"Content-Type": "text/plain"}
    now = datetime.now(UTC)
    cases = {
        "bad signature": a.sign(a.claims(), key=Ed25519PrivateKey.generate()),
        "agent-id differs from the path": a.sign({**a.claims(), "agent-id": "AA_OTHER"}),
        "another business": a.sign({**a.claims(), "business-id": "SOMEONE_ELSE"}),
        "issued in the future": a.sign(a.claims(issued=now + timedelta(minutes=5))),
        "expired": a.sign(a.claims(issued=now - timedelta(minutes=20))),
    }
    for name, body in cases.items():
        r = client.post(url, data=body, headers=plain)
        assert r.status_code == 403 and r.data == b"", name
    assert client.post(f"{API}/agent/NOBODY", data=a.sign(a.claims()), headers=plain).status_code == 403
    once = a.sign(a.claims())
    assert client.post(url, data=once, headers=plain).status_code == 200
    replay = client.post(url, data=once, headers=plain)
    assert replay.status_code == 403 and replay.data == b""
    garbled = client.post(url, data="not base64!", headers=plain)
    assert garbled.status_code == 403 and garbled.data == b"" and "Content-Type" not in garbled.headers


# --- exercises, statuses and callbacks ---------------------------------------------------------------------

def test_access_is_fulfilled_with_a_results_url_then_expires(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, _admin = _ready(inline_app, key_for, a)
    me = person(2)
    r = a.exercise(client, "access", regime="ccpa", email=me.user["email"], email_verified=True, user_id="2",
                   status_callback=receiver.url, **{"agent-request-id": "req-1"})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["status"] == "fulfilled" and body["agent_request_id"] == "req-1"  # in-process: done at once
    assert {"request_id", "received_at", "expected_by", "results_url", "expires_at"} <= set(body)
    received, due = datetime.fromisoformat(body["received_at"]), datetime.fromisoformat(body["expected_by"])
    assert due - received == timedelta(days=45)  # CCPA
    assert receiver.wait(1)[0]["status"] == "fulfilled"
    assert receiver.received[0]["content_type"] == "application/json"
    assert receiver.received[0]["results_url"] == body["results_url"]
    # results_url: the archive, once
    path = body["results_url"].split("://", 1)[1].split("/", 1)[1]
    got = client.get("/" + path)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(got.data))
    assert "summary.json" in archive.namelist()
    again = client.get("/" + path)
    assert again.status_code == 410 and again.json["code"] == "410"
    # the same agent-request-id answers the same request
    same = a.exercise(client, "access", regime="ccpa", email=me.user["email"], email_verified=True,
                      user_id="2", **{"agent-request-id": "req-1"})
    assert same.json["request_id"] == body["request_id"]
    # the results' time ends: expired, and the agent is told
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).where(DsarRequest.id == _dsar_id(inline_app, body["request_id"]))
                        .values(export_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    _sweep(inline_app)
    assert a.status(client, body["request_id"]).json["status"] == "expired"
    assert receiver.wait(2)[1]["status"] == "expired"


def test_every_exercise_value_is_accepted(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, admin = _ready(inline_app, key_for, a)
    _consent(client, admin, "3")
    for n, kind in enumerate(("access:categories", "access:specific", "deletion")):
        r = a.exercise(client, kind, user_id="3", email=person(3).user["email"], email_verified=True,
                       status_callback=receiver.url)
        assert r.status_code == 200 and r.json["status"] == "fulfilled", (kind, r.json)
        assert r.json["expected_by"]
        assert receiver.wait(n + 1)[n]["request_id"] == r.json["request_id"]
    unknown = a.exercise(client, "rectify", user_id="3")
    assert unknown.status_code == 400 and unknown.json == {
        "code": "400", "fatal": True, "message": unknown.json["message"]}
    assert "Unsupported rights actions" in unknown.json["message"]


def test_opt_out_withdraws_only_sale_purposes_and_opt_in_grants_them_again(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, admin = _ready(inline_app, key_for, a)
    _consent(client, admin, "4")
    out = a.exercise(client, "sale:opt-out", regime="ccpa", user_id="4", status_callback=receiver.url)
    assert out.status_code == 200 and out.json["status"] == "fulfilled", out.json  # no verification needed
    assert _purposes(client, admin, "4") == {"core": True, "analytics": True, "ads": False}
    assert receiver.wait(1)[0]["status"] == "fulfilled"
    with inline_app.extensions["db"].sessions() as session:
        req = session.get(DsarRequest, _dsar_id(inline_app, out.json["request_id"]))
        assert req.type == "consent_withdrawal"
    unverified = a.exercise(client, "sale:opt-in", user_id="4")
    assert (unverified.json["status"], unverified.json["reason"]) == ("denied", "insuf_verification")
    back = a.exercise(client, "sale:opt-in", user_id="4", email="x@example.com", email_verified=True,
                      status_callback=receiver.url)
    assert back.status_code == 200
    assert _purposes(client, admin, "4") == {"core": True, "analytics": True, "ads": True}
    assert a.status(client, back.json["request_id"]).json["status"] == "fulfilled"
    assert [c["status"] for c in receiver.wait(2) if c["request_id"] == back.json["request_id"]] == ["fulfilled"]
    stranger = a.exercise(client, "sale:opt-in", user_id="nobody", email="x@example.com", email_verified=True)
    assert a.status(client, stranger.json["request_id"]).json["reason"] == "no_match"


def test_need_user_verification_then_fulfilled(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, admin = _ready(inline_app, key_for, a)
    me = person(2)
    r = a.exercise(client, "deletion", email=me.user["email"], user_id="2", status_callback=receiver.url)
    body = r.json
    assert (body["status"], body["reason"]) == ("in_progress", "need_user_verification")
    link = body["user_verification_url"]
    assert link.startswith("http") and "/privacy/mi-home/link/" in link and body["expires_at"]
    page = client.get("/" + link.split("://", 1)[1].split("/", 1)[1])
    assert page.status_code == 303  # the privacy centre signs the person in for this request
    dsar_id = _dsar_id(inline_app, body["request_id"])
    v = client.post(f"/v1/requests/{dsar_id}/verify", json={"code": _code(inline_app, dsar_id)}, headers=admin)
    assert v.status_code == 200
    assert receiver.statuses()[:1] == [("in_progress", None)]
    receiver.wait(2)
    assert receiver.statuses() == [("in_progress", None), ("fulfilled", None)]
    assert a.status(client, body["request_id"]).json["status"] == "fulfilled"


def test_revoke_and_the_denials(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, admin = _ready(inline_app, key_for, a)
    email = person(2).user["email"]

    def pending() -> str:
        return a.exercise(client, "access", email=email, status_callback=receiver.url).json["request_id"]

    # revoked by the agent (signed), with its callback
    one = pending()
    gone = a.revoke(client, one)
    assert gone.status_code == 200 and gone.json["status"] == "revoked"
    assert receiver.wait(1)[-1]["status"] == "revoked"
    assert a.revoke(client, one).status_code == 200  # a new message: still revoked
    done = a.exercise(client, "deletion", user_id="2", email=email, email_verified=True).json["request_id"]
    late = a.revoke(client, done)
    assert late.status_code == 409 and late.json["code"] == "409"
    # denied: too many wrong codes
    two = pending()
    dsar_two = _dsar_id(inline_app, two)
    for _ in range(5):
        client.post(f"/v1/requests/{dsar_two}/verify", json={"code": "000000"}, headers=admin)
    assert receiver.wait(2)[-1]["status"] == "denied"
    assert a.status(client, two).json["reason"] == "insuf_verification"
    # denied by an operator, with a reason code
    three = pending()
    r = client.post(f"/v1/drp/requests/{three}/deny", headers=admin,
                    json={"reason": "suspected_fraud", "processing_details": "signals of a scripted attack"})
    assert r.status_code == 200 and (r.json["status"], r.json["reason"]) == ("denied", "suspected_fraud")
    assert receiver.wait(3)[-1]["reason"] == "suspected_fraud"
    # denied: the person never confirmed within the window
    four = pending()
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DrpRequest).where(DrpRequest.id == four)
                        .values(verify_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert _sweep(inline_app)["verifications_expired"] == 1
    assert receiver.wait(4)[-1]["reason"] == "insuf_verification"
    # decided at intake: a regime this business does not honour, no identity, nothing verifiable
    assert a.exercise(client, "access", regime="gdpr", email=email).json["reason"] == "outside_jurisdiction"
    assert a.exercise(client, "access").json["reason"] == "no_match"
    assert a.exercise(client, "deletion", phone_number="+15555550100").json["reason"] == "insuf_verification"
    assert a.exercise(client, "access", user_id="2", email=email,
                      email_verified=True).json["status"] == "fulfilled"  # voluntary


def test_refusals_of_the_exercise_endpoint(inline_app, key_for):
    a, b = Agent("AA_ONE"), Agent("AA_TWO")
    client, _ = _ready(inline_app, key_for, a, b)
    email = person(2).user["email"]
    url = f"{API}/data-rights-request"
    mine = a.exercise(client, "access", email=email).json["request_id"]
    assert b.status(client, mine).status_code == 403  # another agent's request
    assert b.status(client, mine).json["code"] == "403"
    assert a.status(client, "no-such-request").status_code == 404
    now = datetime.now(UTC)
    claims = a.claims(exercise="access", email=email)
    for name, body, status in (
        ("bad signature", a.sign(claims, key=b.key), 403),
        ("signed by another agent", b.sign({**claims, "agent-id": "AA_TWO"}), 403),
        ("claims another agent", a.sign({**claims, "agent-id": "AA_TWO"}), 403),
        ("another business", a.sign({**claims, "business-id": "ELSEWHERE"}), 403),
        ("expired", a.sign(a.claims(issued=now - timedelta(minutes=11), exercise="access", email=email)), 403),
        ("too long a window", a.sign(a.claims(lifetime=timedelta(days=2), exercise="access", email=email)), 403),
        ("not base64", "%%%", 400),
    ):
        r = client.post(url, data=body, headers=a.headers())
        assert r.status_code == status and r.json["code"] == str(status), name
    once = a.sign(claims)
    assert client.post(url, data=once, headers=a.headers()).status_code == 200
    replay = client.post(url, data=once, headers=a.headers())
    assert replay.status_code == 409 and replay.json["fatal"] is True
    assert client.post(url, data=a.sign(claims), headers={"Authorization": "Bearer nope"}).status_code == 401
    json_body = client.post(url, json={"x": 1}, headers={"Authorization": f"Bearer {a.token}"})
    assert json_body.status_code == 415
    # another agent cannot revoke it either
    assert b.revoke(client, mine).status_code == 403


def test_a_callback_refused_is_retried_and_a_lost_one_resent_from_the_database(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, _admin = _ready(inline_app, key_for, a)
    receiver.fail = 1  # the first POST answers 500
    r = a.exercise(client, "deletion", user_id="2", email=person(2).user["email"], email_verified=True,
                   status_callback=receiver.url)
    assert r.json["status"] == "fulfilled"
    with inline_app.extensions["db"].sessions() as session:
        row = session.scalars(select(Callback).where(Callback.drp_request_id == r.json["request_id"])).one()
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
        assert b"fulfilled" not in row.payload  # sealed
    with inline_app.extensions["db"].session() as session:  # its backoff is over
        session.execute(update(Callback).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert _sweep(inline_app)["callbacks_enqueued"] == 1
    assert receiver.wait(1)[0]["status"] == "fulfilled"
    with inline_app.extensions["db"].sessions() as session:
        row = session.scalars(select(Callback)).one()
        assert (row.state, row.attempts) == ("delivered", 2)


def test_cli_registers_lists_and_revokes(inline_app, key_for):
    key_for(inline_app)  # creates the app mi-home
    a = Agent("AA_CLI")
    runner = inline_app.test_cli_runner()
    made = runner.invoke(args=["drp", "register", "--app", "mi-home", "--agent-id", "AA_CLI", "--verify-key",
                               a.verify_key, "--business-id", "MI_HOME"])
    assert made.exit_code == 0, made.output
    bad = runner.invoke(args=["drp", "register", "--app", "mi-home", "--agent-id", "AA_BAD", "--verify-key",
                              "bm90IGEga2V5", "--business-id", "MI_HOME"])
    assert bad.exit_code != 0 and "verify_key" in bad.output
    assert "AA_CLI\tMI_HOME\tactive" in runner.invoke(args=["drp", "list", "--app", "mi-home"]).output
    assert a.setup(inline_app.test_client()).status_code == 200
    assert runner.invoke(args=["drp", "revoke", "--app", "mi-home", "--agent-id", "AA_CLI", "--reason",
                               "test"]).exit_code == 0
    assert a.setup(inline_app.test_client()).status_code == 403
    swept = runner.invoke(args=["drp", "sweep"])
    assert swept.exit_code == 0 and "callbacks_enqueued=0" in swept.output


def test_an_extension_is_called_back_with_the_new_expected_by_and_its_reason(inline_app, key_for, receiver):
    a = Agent("AA_ONE")
    client, admin = _ready(inline_app, key_for, a)
    first = a.exercise(client, "access", regime="ccpa", email=person(2).user["email"],
                       status_callback=receiver.url).json
    dsar_id = _dsar_id(inline_app, first["request_id"])
    r = client.post(f"/v1/requests/{dsar_id}/extend", json={"reason": "many systems to search"}, headers=admin)
    assert r.status_code == 200
    [update] = receiver.wait(1)
    assert update["status"] == "in_progress" and update["reason"] == "need_user_verification"
    assert update["processing_details"] == "the deadline was extended: many systems to search"
    received, due = datetime.fromisoformat(update["received_at"]), datetime.fromisoformat(update["expected_by"])
    assert due - received == timedelta(days=90)  # CCPA: 45 days and one extension of 45
    assert a.status(client, first["request_id"]).json == {k: v for k, v in update.items() if k != "content_type"}


def test_one_agent_id_in_two_apps_each_with_its_own_key_and_business(inline_app, key_for):
    from service.tenancy import create_app_tenant, create_key

    a = Agent("AA_ONE")
    client, _ = _ready(inline_app, key_for, a)
    with inline_app.extensions["db"].session() as session:
        create_app_tenant(session, "other-app")
        _, secret = create_key(session, "other-app", frozenset({"admin"}))
    elsewhere = Agent("AA_ONE", business="OTHER_BIZ")  # the same id, another key, another business
    assert register(inline_app, client, {"Authorization": f"Bearer {secret}"}, elsewhere).status_code == 201
    url, plain = f"{API}/agent/AA_ONE", {"Content-Type": "text/plain"}
    crossed = client.post(url, data=a.sign({**a.claims(), "business-id": "OTHER_BIZ"}), headers=plain)
    assert crossed.status_code == 403 and crossed.data == b""  # a's key, the other app's business
    assert elsewhere.setup(client).status_code == 200 and elsewhere.token != a.token
    mine = a.exercise(client, "access", email=person(2).user["email"]).json["request_id"]
    assert elsewhere.status(client, mine).status_code == 403
    taken = register(inline_app, client, {"Authorization": f"Bearer {secret}"}, Agent("AA_TWO"))
    assert taken.status_code == 409  # MI_HOME is mi-home's business id


def test_every_step_is_audited_without_personal_data_or_secrets(inline_app, key_for, receiver, caplog):
    from sqlalchemy import text

    a = Agent("AA_ONE")
    email = person(2).user["email"]
    with caplog.at_level("INFO"):
        client, _ = _ready(inline_app, key_for, a)
        body = a.exercise(client, "access", user_id="2", email=email, email_verified=True,
                          status_callback=receiver.url).json
        receiver.wait(1)
    with inline_app.extensions["db"].sessions() as session:
        rows = list(session.execute(text("SELECT actor, action, details FROM audit_events")))
    actions = {action for _, action, _ in rows}
    assert {"drp.agent_registered", "drp.token_issued", "drp.request_received", "drp.status_changed",
            "drp.callback_queued", "drp.callback_delivered", "dsar.received", "dsar.completed"} <= actions
    assert ("drp:AA_ONE", "drp.request_received") in {(actor, action) for actor, action, _ in rows}
    dump = " ".join(str(v) for row in rows for v in row) + caplog.text
    token = body["results_url"].rsplit("token=", 1)[1]
    for secret in (email, a.token, token, receiver.url):
        assert secret not in dump
