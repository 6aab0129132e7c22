"""The RQ cron scheduler's configuration (the Procfile's `scheduler:` line: `rq cron service.cron`).

Two entries. A tick on the `retention` queue that starts the runs of due policies. The tick reads the policies
each time, so policies created through the API after the scheduler started are scheduled too, each by its own
cron expression. RETENTION_TICK_SECONDS sets how often it looks (default 60; a policy's schedule cannot fire
more often than that). The rights-request maintenance pass on the `dsar` queue (dsar.jobs.maintain). And a full
verification of the consent ledger on the `default` queue (consent.jobs.verify_ledger), every
LEDGER_VERIFY_SECONDS (default 86400; also once when the scheduler starts).
"""

from __future__ import annotations

from rq import cron

from consent import jobs as consent_jobs
from dsar.jobs import maintain as maintain_requests
from retention.config import env_int
from retention.jobs import run_due_policies

cron.register(run_due_policies, queue_name="retention", interval=env_int("RETENTION_TICK_SECONDS", 60),
              job_timeout=300, result_ttl=600)
# Rights requests: outbox dispatch, reconciliation of lost or orphaned tasks, destruction of old exports.
cron.register(maintain_requests, queue_name="dsar", interval=env_int("DSAR_MAINTENANCE_SECONDS", 60),
              job_timeout=300, result_ttl=600)
# The consent ledger: a full verification, recorded in ledger_verifications (one that finds another in progress
# records nothing).
cron.register(consent_jobs.verify_ledger, queue_name="default", interval=consent_jobs.interval_seconds(),
              job_timeout=consent_jobs.timeout_seconds(), result_ttl=86400)
