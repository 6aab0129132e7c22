"""The RQ cron scheduler's table (the Procfile's `scheduler:` line runs it through privacy.scheduler, which outlives
a Redis outage; `rq cron privacy.cron` reads it too): every domain's entries.

Today: retention's tick on the `retention` queue (RETENTION_TICK_SECONDS), the rights-request maintenance pass on
`dsar` (DSAR_MAINTENANCE_SECONDS) and a full verification of the consent ledger on `default`
(LEDGER_VERIFY_SECONDS; also once when the scheduler starts), and governance's drift check of approved privacy
impact assessments on `default` (GOVERNANCE_DRIFT_SECONDS). Each domain's `register` says why and how often.
"""

from __future__ import annotations

from rq import cron

from privacy import load_models, wiring

load_models()
for entry in wiring().cron:
    cron.register(entry.func, **entry.options())
