"""Single sign-on through OpenID Connect: the settings (`OIDC_*`), a claim mapped to a console role, and the
operator an identity provider's verified ID token signs in (made on first sign-in, its role kept in step)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from console import operators
from console.models import ROLES, Operator
from service import audit
from service.config import ConfigError
from service.db import utcnow

# `amr` values (RFC 8176) that show the provider checked more than a password; an admin must have one.
STRONG_AMR = ("mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm")


@dataclass(frozen=True)
class SsoSettings:
    issuer: str
    client_id: str
    client_secret: str
    role_claim: str  # e.g. "groups" or "roles": a string or a list of strings
    roles: tuple[tuple[str, str], ...]  # (claim value, console role), in the order a user's values are tried
    admin_amr: tuple[str, ...]  # an admin's ID token must name one of these in `amr` (empty: not checked)
    scopes: str
    name: str  # what the sign-in button calls the provider


class SsoRefused(Exception):
    """The provider's answer signs nobody in; `reason` is one of the REASONS, shown in the operator's words."""

    REASONS = ("provider", "email", "no_role", "mfa", "local_account", "disabled")

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _role_map(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        value, sep, role = item.rpartition("=")
        if not item:
            continue
        if not sep or not value.strip() or role.strip() not in ROLES:
            raise ConfigError(f"OIDC_ROLES: {item!r} is not claim-value=role with a role of {', '.join(ROLES)}")
        pairs.append((value.strip(), role.strip()))
    if not pairs:
        raise ConfigError("OIDC_ROLES: map at least one claim value to a role, e.g. privacy-agents=agent")
    return tuple(pairs)


def load(env: Mapping[str, str]) -> SsoSettings | None:
    """The single sign-on settings, or None when OIDC_ISSUER is not set (local accounts only)."""
    issuer = (env.get("OIDC_ISSUER") or "").rstrip("/")
    if not issuer:
        return None
    parts = urlsplit(issuer)
    local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ConfigError(f"OIDC_ISSUER: expected an https URL (http only on localhost), got {issuer!r}")
    missing = [name for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_ROLES") if not env.get(name)]
    if missing:
        raise ConfigError(f"{missing[0]}: required when OIDC_ISSUER is set")
    amr = env.get("OIDC_ADMIN_AMR")
    return SsoSettings(
        issuer=issuer, client_id=env["OIDC_CLIENT_ID"], client_secret=env["OIDC_CLIENT_SECRET"],
        role_claim=env.get("OIDC_ROLE_CLAIM") or "groups", roles=_role_map(env["OIDC_ROLES"]),
        admin_amr=STRONG_AMR if amr is None else tuple(v.strip() for v in amr.split(",") if v.strip()),
        scopes=env.get("OIDC_SCOPES") or "openid email profile", name=env.get("OIDC_NAME") or "single sign-on")


def role_for(settings: SsoSettings, claims: Mapping[str, Any]) -> str | None:
    """The console role of the first mapping whose claim value the user holds, or None."""
    held = claims.get(settings.role_claim)
    values = {held} if isinstance(held, str) else {v for v in held if isinstance(v, str)} \
        if isinstance(held, list) else set()
    return next((role for value, role in settings.roles if value in values), None)


def _strong(settings: SsoSettings, claims: Mapping[str, Any]) -> bool:
    if not settings.admin_amr:
        return True
    amr = claims.get("amr")
    return isinstance(amr, list) and any(value in settings.admin_amr for value in amr)


def sign_in(session: Session, settings: SsoSettings, claims: Mapping[str, Any]) -> Operator:
    """The operator a verified ID token's claims sign in (iss and sub name them; the email is only a label).

    The first sign-in makes the operator; each sign-in sets its role from the claim, so the provider stays the
    source of truth. Refusals are audited in the caller's unit of work, which commits them."""
    subject = f"{settings.issuer}|{claims.get('sub')}"
    row = session.scalar(select(Operator).where(Operator.sso_subject == subject).with_for_update())

    def refuse(reason: str) -> SsoRefused:
        audit.record(session, app_id=None, actor=operators.actor(row.id) if row else "anonymous",
                     action="console.sign_in_failed", resource_type="operator",
                     resource_id=str(row.id) if row else "sso", details={"reason": f"sso:{reason}"})
        return SsoRefused(reason)

    role = role_for(settings, claims)
    if role is None:
        raise refuse("no_role")
    if role == "admin" and not _strong(settings, claims):
        raise refuse("mfa")
    if row is None:
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            raise refuse("email")
        try:
            email = operators.normalise_email(email)
        except operators.OperatorError:
            raise refuse("email") from None
        if operators.by_email(session, email) is not None:
            # Never take over an account made here: an admin decides whether that person should use SSO.
            raise refuse("local_account")
        row = operators.create(session, email, role, None, by="sso")
        row.sso_subject, row.setup_completed_at = subject, utcnow()
    if row.disabled_at is not None:
        raise refuse("disabled")
    if row.role != role:
        audit.record(session, app_id=None, actor="sso", action="console.operator_role_changed",
                     resource_type="operator", resource_id=str(row.id), details={"from": row.role, "to": role})
        row.role = role
    row.last_sign_in_at = utcnow()
    audit.record(session, app_id=None, actor=operators.actor(row.id), action="console.signed_in",
                 resource_type="operator", resource_id=str(row.id), details={"sso": True})
    return row
