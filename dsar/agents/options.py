"""DRP settings from the environment (each with its default), read where needed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from service.config import env_int

PREFIX = "/drp"  # the DRP `api_base` is PUBLIC_URL + this; the protocol's paths (/v1/...) follow it


@dataclass(frozen=True)
class DrpOptions:
    skew: timedelta            # DRP_CLOCK_SKEW_SECONDS (30): how far in the future issued-at may be
    max_window: timedelta      # DRP_MAX_MESSAGE_SECONDS (3600): expires-at at most this after issued-at
    verification: timedelta    # DRP_VERIFICATION_HOURS (168): how long a person has to confirm with the code
    callback_attempts: int     # DRP_CALLBACK_ATTEMPTS (8)
    callback_retry: int        # DRP_CALLBACK_RETRY_SECONDS (30), doubled after each failure
    callback_lease: int        # DRP_CALLBACK_LEASE_SECONDS (120)
    voluntary_jurisdiction: str  # DRP_VOLUNTARY_JURISDICTION (CCPA): the deadline table row of regime-less requests


def drp_options(env: Mapping[str, str]) -> DrpOptions:
    return DrpOptions(
        skew=timedelta(seconds=env_int(env, "DRP_CLOCK_SKEW_SECONDS", 30)),
        max_window=timedelta(seconds=env_int(env, "DRP_MAX_MESSAGE_SECONDS", 3600, minimum=1)),
        verification=timedelta(hours=env_int(env, "DRP_VERIFICATION_HOURS", 168, minimum=1)),
        callback_attempts=env_int(env, "DRP_CALLBACK_ATTEMPTS", 8, minimum=1),
        callback_retry=env_int(env, "DRP_CALLBACK_RETRY_SECONDS", 30),
        callback_lease=env_int(env, "DRP_CALLBACK_LEASE_SECONDS", 120, minimum=1),
        voluntary_jurisdiction=env.get("DRP_VOLUNTARY_JURISDICTION", "CCPA").upper(),
    )
