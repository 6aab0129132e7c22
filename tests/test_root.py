"""The composition root wires every domain: the scheduler's table, the worker's preloads and the app's parts."""

from __future__ import annotations

from privacy import DOMAINS, wiring


def test_every_domain_registers_and_the_cron_table_keeps_its_entries() -> None:
    wired = wiring()
    assert set(DOMAINS) >= {"consent", "dsar", "retention"}
    table = {f"{e.func.__module__}.{e.func.__name__}": e.options() for e in wired.cron}
    assert table == {
        "retention.jobs.run_due_policies": {"queue_name": "retention", "interval": 60, "job_timeout": 300,
                                            "result_ttl": 600},
        "dsar.maintenance.maintain": {"queue_name": "dsar", "interval": 60, "job_timeout": 300, "result_ttl": 600},
        "dsar.agents.sweep.sweep": {"queue_name": "dsar", "interval": 60, "job_timeout": 300, "result_ttl": 600},
        "consent.jobs.verify_ledger": {"queue_name": "default", "interval": 86400, "job_timeout": 6 * 3600,
                                       "result_ttl": 86400},
        "consent.jobs.fold_counts": {"queue_name": "default", "interval": 60, "job_timeout": 3600, "result_ttl": 3600},
        "service.mail.delivery.sweep": {"queue_name": "default", "interval": 60, "job_timeout": 600,
                                        "result_ttl": 3600},
        "incidents.jobs.maintain": {"queue_name": "default", "interval": 300, "job_timeout": 3600,
                                    "result_ttl": 600},
        "governance.jobs.check_drift": {"queue_name": "default", "interval": 3600, "job_timeout": 600,
                                        "result_ttl": 600},
        "governance.jobs.sweep_notices": {"queue_name": "default", "interval": 60, "job_timeout": 600,
                                          "result_ttl": 600},
        "governance.evidence_jobs.reconcile": {"queue_name": "default", "interval": 60, "job_timeout": 60,
                                               "result_ttl": 600},
        "governance.evidence_jobs.sweep_packs": {"queue_name": "default", "interval": 3600, "job_timeout": 300,
                                                 "result_ttl": 600},
    }
    assert [f"{h.__module__}.{h.__name__}" for h in wired.on_erasure_completed] == [
        "governance.fanout.on_erasure_completed"]
    assert {"retention.jobs", "dsar.jobs", "dsar.maintenance", "dsar.agents.callbacks"} <= set(wired.job_modules)
    assert {"consent.models", "dsar.models", "retention.models"} <= set(wired.model_modules)


def test_the_app_carries_every_domains_routes_and_commands(app) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/v1/policies", "/v1/requests", "/v1/retention/policies", "/v1/stores", "/v1/datamap",
            "/readyz", "/v1/incidents", "/v1/governance/ropa", "/v1/governance/findings",
            "/drp/v1/data-rights-request", "/v1/drp/agents"} <= rules
    assert {"db", "apps", "keys", "demo", "ledger", "dsar", "drp", "retention", "incidents", "governance"} <= set(
        app.cli.commands)
