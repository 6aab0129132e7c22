"""`flask ledger verify` streams: its peak memory over ten times the events grows by less than a small bound."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.consent.seeding import seed_chains

SUBJECTS = 1200  # chains of 1 to 3 events: about 2,400 events, then ten times as many
GROWTH_BOUND_KB = 8 * 1024
# Runs the command as its only child, so the peak it reports is the command's own.
PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def verify_peak_kb(base_config: dict[str, str]) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PRIVACY_CONFIG")}
    env.update(base_config, PRIVACY_ENV="development")
    flask = str(Path(sys.executable).parent / "flask")
    done = subprocess.run([sys.executable, "-c", PEAK, flask, "--app", "wsgi", "ledger", "verify", "--batch", "500"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    code, peak = done.stdout.split()[-2:]
    assert code == "0", done.stdout + done.stderr
    return int(peak)


def test_peak_memory_of_the_cli_stays_flat_over_ten_times_the_events(app, base_config, policy):
    small = seed_chains(app, "app-a", "privacy", range(SUBJECTS))
    small_peak = verify_peak_kb(base_config)
    large = small + seed_chains(app, "app-a", "privacy", range(SUBJECTS, 10 * SUBJECTS))
    assert large >= 10 * small - 20
    large_peak = verify_peak_kb(base_config)
    assert large_peak - small_peak < GROWTH_BOUND_KB, (small_peak, large_peak)
