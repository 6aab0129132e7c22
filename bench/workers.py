"""The Procfile's worker for the benchmarks: its `worker:` line read as `rq worker` reads it, started, and waited
for until it has registered with Redis, so a benchmark measures what production runs without restating it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from rq import Worker

ROOT = Path(__file__).resolve().parent.parent
RQ = str(Path(sys.executable).parent / "rq")  # this virtualenv's


def procfile_command(redis_url: str) -> list[str]:
    """The Procfile's `worker:` command with `${REDIS_URL}` (and any other variable) filled in."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("worker:"):
            words = shlex.split(os.path.expandvars(line.partition(":")[2].replace("${REDIS_URL}", redis_url)))
            return [RQ if words[0] == "rq" else words[0], *words[1:]]
    raise SystemExit("no worker: line in the Procfile")


def procfile_worker() -> tuple[str, list[str]]:
    """The worker class and the queues (in their order) of the Procfile's `worker:` line, parsed by `rq worker`'s
    own options, so that other workers can be started on the same queues for comparison."""
    from rq.cli.workers import worker

    words = procfile_command("redis://unused")
    params = worker.make_context("worker", words[2:]).params
    return params["worker_class"] or "rq.worker.Worker", list(params["queues"])


def start(command: list[str], env: dict[str, str], redis_url: str, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Start a worker (`command`, e.g. procfile_command's) and return once Redis lists one more worker."""
    redis = Redis.from_url(redis_url)
    before = len(Worker.all(connection=redis))
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while len(Worker.all(connection=redis)) <= before:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"the rq worker did not start: {shlex.join(command)}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """A warm shutdown (SIGTERM: the job in hand finishes), then a kill if it does not come."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
