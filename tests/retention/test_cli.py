"""`flask retention ...` for ops, and the data map showing each category's policy and last run."""

from __future__ import annotations

import json

from tests.retention import estate


def test_cli_runs_in_the_foreground_with_progress_and_prints_certificates(ret_app, seeded, policy):
    policy("cloud-photos", "device_log", "P90D")
    policy("sessions", "sessions", "P30D")
    cli = ret_app.test_cli_runner()
    before = estate.sql_rows(ret_app, "device_logs", "logged_at")

    dry = cli.invoke(args=["retention", "run", "--policy", "cloud-photos.device_log", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.stdout and "would destroy" in dry.stdout and "succeeded" in dry.stdout
    assert estate.sql_rows(ret_app, "device_logs", "logged_at") == before

    real = cli.invoke(args=["retention", "run"])
    assert real.exit_code == 0, real.output
    assert "cloud-photos/device_log" in real.stderr  # a progress bar per store and category
    assert "sessions/sessions" in real.stderr
    run_id = real.stdout.split()[1].rstrip(":")
    assert "destroyed" in real.stdout and "certificate sha256" in real.stdout

    listed = cli.invoke(args=["retention", "runs"])
    assert run_id in listed.stdout and "2 of 2 runs" in listed.stderr
    policies = cli.invoke(args=["retention", "policies"])
    assert "cloud-photos.device_log" in policies.stdout and f"last run {run_id} done" in policies.stdout

    token = cli.invoke(args=["retention", "certificate", run_id]).stdout.strip()
    assert token.count(".") == 2
    claims = json.loads(cli.invoke(args=["retention", "certificate", run_id, "--claims"]).stdout)
    assert claims["jti"] == run_id and {s["category"] for s in claims["steps"]} == {"device_log", "sessions"}
    missing = cli.invoke(args=["retention", "certificate", "nope"])
    assert missing.exit_code != 0 and "no retention run" in missing.output


def test_cli_refuses_a_second_run_of_a_policy_in_progress(ret_app, policy):
    from retention import runs
    from retention.policies import Actor

    policy("cloud-photos", "device_log", "P90D")
    run_id, _ = runs.request_run(ret_app.extensions["db"], Actor("test"), policy_key="cloud-photos.device_log")
    result = ret_app.test_cli_runner().invoke(args=["retention", "run", "--policy", "cloud-photos.device_log"])
    assert result.exit_code != 0 and run_id in result.output


def test_digest_command_recomputes_a_certificates_digest(ret_app, seeded, policy, tmp_path):
    policy("sessions", "sessions", "P30D")
    before = set(estate.sessions(ret_app))
    cli = ret_app.test_cli_runner()
    run_id = cli.invoke(args=["retention", "run"]).stdout.split()[1].rstrip(":")
    destroyed = sorted(before - set(estate.sessions(ret_app)))
    listing = tmp_path / "keys.txt"
    listing.write_text("\n".join(destroyed) + "\n")
    claims = json.loads(cli.invoke(args=["retention", "certificate", run_id, "--claims"]).stdout)
    out = cli.invoke(args=["retention", "digest", "--store", "sessions", "--category", "sessions", str(listing)])
    assert out.stdout.strip() == claims["steps"][0]["keyDigest"]


def test_datamap_shows_each_categorys_policy_and_last_run(ret_app, seeded, policy, make_key, headers):
    policy("cloud-photos", "device_log", "P90D")
    client = ret_app.test_client()
    run = client.post("/v1/retention/runs", json={}, headers=headers).json  # in-process: done on return
    assert run["state"] == "succeeded"
    datamap = client.get("/v1/datamap", headers=make_key("ops", "platform:read")).json
    places = {(loc["store"], c["category"]): loc["retention"] for c in datamap["categories"]
              for loc in c["locations"]}
    logs = places[("cloud-photos", "device_log")]
    assert logs["policy"] == "cloud-photos.device_log" and logs["retain_for"] == "P90D"
    assert logs["last_run"]["run"] == run["id"] and logs["last_run"]["count"] == run["steps"][0]["count"]
    assert places[("uploads", "photos")] is None


def test_tick_starts_due_policies_and_resume_continues_an_interrupted_run(ret_app, seeded, policy):
    from datetime import timedelta

    from sqlalchemy import update

    from retention import leases, runs
    from retention.models import RetentionPolicy, RetentionRun
    from retention.policies import Actor
    from service.db import utcnow

    policy("sessions", "sessions", "P30D", schedule="@hourly")
    db = ret_app.extensions["db"]
    with db.session() as session:
        session.execute(update(RetentionPolicy).values(created_at=utcnow() - timedelta(hours=2)))
    cli = ret_app.test_cli_runner()
    ticked = cli.invoke(args=["retention", "tick"])
    run_id = ticked.stdout.strip()
    with db.sessions() as session:
        run = runs.get_run(session, run_id)
        assert (run.trigger, run.state) == ("schedule", "succeeded")  # in-process: it ran during the tick
    assert cli.invoke(args=["retention", "tick"]).stdout.strip() == "nothing due"

    # A run whose worker died: its lease ran out, and ops continue it in the foreground.
    interrupted, _ = runs.request_run(db, Actor("test"), policy_key="sessions.sessions")
    assert leases.claim(db, interrupted, 60) is not None
    with db.session() as session:
        session.execute(update(RetentionRun).where(RetentionRun.id == interrupted)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    resumed = cli.invoke(args=["retention", "resume", interrupted])
    assert resumed.exit_code == 0, resumed.output
    assert f"run {interrupted}: succeeded" in resumed.stdout
