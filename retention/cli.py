"""`flask retention ...`: list policies and runs, run policies in the foreground with a progress bar per store,
print certificates, and recompute a key digest for an auditor."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from retention import certificates, digest, execution, jobs, policies, runs
from retention.execution import StepInfo
from retention.views import policy_view
from service.crypto import b64url_decode
from service.errors import DomainError

retention_cli = AppGroup("retention", help="Retention policies, destruction runs and certificates.")


def _rt() -> Any:
    return current_app.extensions["runtime"]


class Bars:
    """One click progress bar per store and category, on stderr (stdout carries the summary)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def begin(self, step: StepInfo, total: int | None) -> None:
        self.bar = click.progressbar(length=total or 0, label=f"{step.store}/{step.category}", show_pos=True,
                                     file=sys.stderr)
        self.bar.__enter__()

    def advance(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def end(self, step: StepInfo, state: str, count: int) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _summary(report: dict[str, Any]) -> None:
    kind = "dry run" if report["dry_run"] else "run"
    click.echo(f"{kind} {report['id']}: {report['state']}")
    verb = "would destroy" if report["dry_run"] else "destroyed"
    for step in report["steps"]:
        line = (f"  {step['policy']} v{step['policy_version']}  {step['store']}/{step['category']}  "
                f"cutoff {step['cutoff'].isoformat()}  {step['state']}  {verb} {step['count']} ({step['action']})")
        if step["skipped"]:
            held = step["skipped"]
            line += f"  kept {held.get('records', '?')} ({held.get('reason')}; holds {held.get('holds', [])})" \
                if held.get("holds") else f"  skipped: {held.get('reason')} by run {held.get('run')}"
        if step["error"]:
            line += f"  error: {step['error']}"
        click.echo(line)
    if report["certificate"]:
        click.echo(f"certificate sha256 {report['certificate_sha256']} "
                   f"(flask --app wsgi retention certificate {report['id']})")


@retention_cli.command("run")
@click.option("--policy", "policy_key", help="The policy's key (default: every enabled policy).")
@click.option("--dry-run", is_flag=True, help="Count what would be destroyed; change nothing.")
def run_command(policy_key: str | None, dry_run: bool) -> None:
    """Run retention now, in the foreground, and print the summary."""
    rt = _rt()
    try:
        run_id, created = runs.request_run(rt.db, policies.Actor("cli:retention run"), policy_key=policy_key,
                                           dry_run=dry_run, trigger="cli")
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    if not created:
        raise click.ClickException(f"run {run_id} of this policy is already queued or running")
    state = execution.execute(rt, run_id, Bars())
    with rt.db.sessions() as session:
        _summary(runs.report(session, runs.get_run(session, run_id), batches=False))
    if state != "succeeded":
        raise SystemExit(1)


@retention_cli.command("resume")
@click.argument("run_id")
def resume_command(run_id: str) -> None:
    """Continue a failed or interrupted run in the foreground, from its last committed batch."""
    rt = _rt()
    try:
        with rt.db.session() as session:
            runs.retry_run(session, policies.Actor("cli:retention resume"), run_id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    state = execution.execute(rt, run_id, Bars())
    with rt.db.sessions() as session:
        _summary(runs.report(session, runs.get_run(session, run_id), batches=False))
    if state != "succeeded":
        raise SystemExit(1)


@retention_cli.command("tick")
def tick_command() -> None:
    """Start the runs of due policies now (what the scheduler does every RETENTION_TICK_SECONDS)."""
    from redis.exceptions import RedisError

    from service.runtime import use_runtime

    try:
        with use_runtime(_rt()):
            started = jobs.run_due_policies()
    except RedisError as exc:
        raise click.ClickException(f"Redis is unreachable ({type(exc).__name__}): queued runs stay queued and "
                                   "the next tick dispatches them") from None
    click.echo("\n".join(started) if started else "nothing due")


@retention_cli.command("policies")
def policies_command() -> None:
    """The policies with their current version, origin and last run."""
    with _rt().db.sessions() as session:
        found = policies.list_policies(session)
        if not found:
            click.echo("no retention policies")
        last = runs.last_runs(session)
        for policy in found:
            view = policy_view(session, policy, last)
            run = view["last_run"]
            ran = f"last run {run['run']} {run['state']} {run['count']}" if run else "never run"
            click.echo(f"{view['key']}  v{view['version']}  {view['store']}/{view['category']}  "
                       f"{view['action']} after {view['retain_for']}  schedule {view['schedule']!r}  "
                       f"{view['origin']}{'' if view['enabled'] else '  DISABLED'}  {ran}")


@retention_cli.command("runs")
@click.option("--policy", "policy_key", help="Only runs that applied this policy.")
@click.option("--limit", default=20, show_default=True)
def runs_command(policy_key: str | None, limit: int) -> None:
    """The latest runs, newest first."""
    with _rt().db.sessions() as session:
        items, total = runs.list_runs(session, policy=policy_key, limit=limit)
        for run in items:
            report = runs.report(session, run, batches=False)
            counts = sum(s["count"] for s in report["steps"])
            n = len(report["steps"])
            click.echo(f"{run.id}  {run.created_at.isoformat(timespec='seconds')}  {run.trigger:8}  "
                       f"{'dry' if run.dry_run else 'real':4}  {run.state:9}  {n} polic{'y' if n == 1 else 'ies'}  "
                       f"{counts} records")
        click.echo(f"{len(items)} of {total} runs", err=True)


@retention_cli.command("certificate")
@click.argument("run_id")
@click.option("--claims", "show_claims", is_flag=True, help="Print the decoded claims instead of the JWS.")
def certificate_command(run_id: str, show_claims: bool) -> None:
    """Print a run's destruction certificate (a compact JWS; verify it with /.well-known/jwks.json)."""
    with _rt().db.sessions() as session:
        try:
            run = certificates.certificate_of(session, run_id)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
    assert run.certificate is not None
    if show_claims:
        click.echo(json.dumps(json.loads(b64url_decode(run.certificate.split(".")[1])), indent=2))
    else:
        click.echo(run.certificate)


@retention_cli.command("digest")
@click.option("--store", required=True)
@click.option("--category", required=True)
@click.argument("keys_file", type=click.File("r"))
def digest_command(store: str, category: str, keys_file: Any) -> None:
    """Recompute a certificate's key digest from a file of record keys, one per line."""
    secret = digest.digest_key(_rt().keys)
    keys = (line.rstrip("\n") for line in keys_file if line.strip())
    click.echo(digest.to_hex(digest.key_sum(secret, store, category, keys)))
