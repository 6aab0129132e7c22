"""schemathesis against a live server: a scratch PostgreSQL database, the app migrated and seeded as `make run`
does, `flask run` on a free port, a demo key with every scope, every check, bounded by time.

`make fuzz` runs it for 20 minutes (python -m tests.service.fuzzing --seconds 1200); tests/service/test_fuzz.py
runs a short pass in `make test`. A consent policy is added first (FIXTURE_POLICY) for the stateful phase's links.
The report (schemathesis' output, JUnit XML, the failures as a pytest file) goes to a folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, scratch_database
from tests.service.conftest import free_port

CONFIG = ROOT / "tests" / "service" / "schemathesis.toml"
BIN = Path(sys.executable).parent


@dataclass
class Outcome:
    returncode: int
    output: Path  # schemathesis' own summary
    summary: str  # its closing lines


def _flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=300)
    return done.stdout


# Without `coverage` unless asked (--phases): its deterministic cases run before the others and are not bounded
# by --max-time; a 20-minute `make fuzz` with it spent all 1,271 s in coverage (612 cases, 31 of 81 operations,
# its boundary strings of up to 20,000 characters are slow to build) and never reached fuzzing or stateful.
PHASES = "examples,fuzzing,stateful"
ALL_PHASES = "examples,coverage,fuzzing,stateful"


def run(seconds: int, report_dir: Path, *, workers: int = 2, seed: int | None = None,
        phases: str = PHASES) -> Outcome:
    report_dir.mkdir(parents=True, exist_ok=True)
    with scratch_database(f"privacy_fuzz_{os.getpid()}") as url, \
            tempfile.TemporaryDirectory(prefix="fuzz-") as instance:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "INSTANCE_PATH": instance,
               "PUBLIC_URL": f"http://127.0.0.1:{port}", "PATH": f"{BIN}:{os.environ['PATH']}"}
        env.pop("REDIS_URL", None)  # jobs in process, as `make run`: the fuzzer's requests never wait on a worker
        _flask(env, "db", "upgrade")
        _flask(env, "demo", "seed")
        key = re.search(r"export KEY=(\S+)", _flask(env, "demo", "setup")).group(1)  # type: ignore[union-attr]
        server_log = open(report_dir / "server.log", "wb")  # open while the server runs
        server = subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "run", "--host", "127.0.0.1",
                                   "--port", str(port)], cwd=ROOT, env=env, stdout=server_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait(f"http://127.0.0.1:{port}/healthz", server)
            _consent_policy(f"http://127.0.0.1:{port}", key)
            command = [str(BIN / "schemathesis"), "--config-file", str(CONFIG), "run",
                       f"http://127.0.0.1:{port}/openapi.json", "--checks", "all", "--max-time", str(seconds),
                       "--workers", str(workers), "--phases", phases, "-H", f"Authorization: Bearer {key}",
                       "--report", "junit,pytest", "--report-dir", str(report_dir)]
            if seed is not None:
                command += ["--seed", str(seed)]
            output = report_dir / "schemathesis.txt"
            with open(output, "w") as out:
                try:
                    returncode = subprocess.run(command, cwd=ROOT, env={**env, "NO_COLOR": "1", "COLUMNS": "160"},
                                                stdout=out, stderr=subprocess.STDOUT,
                                                timeout=2 * seconds + 120).returncode
                except subprocess.TimeoutExpired:
                    # --max-time bounds the phases that repeat; a slow one (coverage) can still overrun it.
                    out.write(f"\nschemathesis did not finish within {2 * seconds + 120} s: stopped\n")
                    returncode = -1
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            server_log.close()
    text = output.read_text(errors="replace")
    return Outcome(returncode, output, "\n".join(text.rstrip().splitlines()[-40:]))


# A policy in effect whose purposes can all be refused: the document's links lead from a policy to a subject's
# status, from that status to a consent with the answers it holds (none, for a new subject), then to the subject's
# history and withdrawal. (The demo estate has no policy; `make run`'s has a required purpose, which a consent
# built from a new subject's status leaves out.)
FIXTURE_POLICY = {"key": "0", "title": "Fuzzing", "purposes": [
    {"key": "news", "description": "News by email"}, {"key": "stats", "description": "Usage statistics"}]}


def _consent_policy(base: str, key: str) -> None:
    for path, body in (("/v1/policies", FIXTURE_POLICY),
                       ("/v1/policies/0/versions", {"version": "1", "text": "Terms", "material": True})):
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 201, (path, r.status)


def _wait(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server did not start: see server.log")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=1200)
    parser.add_argument("--report-dir", type=Path, default=ROOT / "fuzz-report")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--phases", default=PHASES, help=f"default {PHASES}; every one: {ALL_PHASES}")
    args = parser.parse_args()
    outcome = run(args.seconds, args.report_dir, workers=args.workers, seed=args.seed, phases=args.phases)
    print(outcome.summary)
    print(f"\nreport: {args.report_dir}")
    sys.exit(outcome.returncode)


if __name__ == "__main__":
    main()
