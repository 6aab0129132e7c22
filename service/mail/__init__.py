"""Email shared by every domain: an encrypted outbox (the source of truth), templates, transports, delivery job."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.wiring import Wiring


def register(wiring: Wiring) -> None:
    """Shared, not a domain: the composition root calls this so workers import the job and cron sweeps, and
    `flask mail` is there for operators."""
    from service.mail import cli, delivery
    from service.wiring import CronEntry

    wiring.cli_groups.append(cli.mail_cli)
    wiring.job_modules.append("service.mail.delivery")
    wiring.cron.append(CronEntry(delivery.sweep, queue=delivery.QUEUE, interval=60, job_timeout=600,
                                 result_ttl=3600))
