"""Operator accounts, callable without Flask: creation and set-up links, passwords and a TOTP second factor,
sign-in with lock-out, server-side sessions (idle expiry, sign-out everywhere), disabling. Nothing commits:
the caller owns the unit of work. Audit entries name the operator by id, never by email."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from console import passwords
from console.models import ROLES, Operator, OperatorSession, SetupToken
from service import audit
from service.crypto.keys import KeyMaterial
from service.db import utcnow
from service.pages.sessions import IDLE

SETUP_TTL = timedelta(hours=24)
MAX_FAILURES = 5  # wrong sign-ins in a row before the account locks
LOCK_FOR = timedelta(minutes=15)
TOUCH_EVERY = timedelta(minutes=1)  # a session's last-seen time is written at most this often
KEEP_ENDED = timedelta(days=1)
ISSUER = "Privacy console"  # the name authenticator apps show
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s.]{2,63}$")


class OperatorError(ValueError):
    """A refused operator command (bad email, unknown role, no such operator...): the message says why."""


class SetupRefused(Exception):
    """A set-up link that is unknown, used or expired (`reason`), or whose operator was disabled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedIn:
    """The operator behind a live session."""

    id: int
    email: str
    role: str
    app_ids: tuple[int, ...] | None  # None: every app
    session_id: str

    def sees_app(self, app_id: int) -> bool:
        return self.app_ids is None or app_id in self.app_ids


def actor(operator_id: int) -> str:
    return f"operator:{operator_id}"


def _digest(token: str) -> str:
    # 256-bit random tokens: a plain hash is enough, nobody can guess one to test against it.
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email):
        raise OperatorError(f"email: {email!r} is not an email address")
    return email


def by_email(session: Session, email: str, *, lock: bool = False) -> Operator | None:
    stmt = select(Operator).where(Operator.email == (email or "").strip().lower())
    return session.scalar(stmt.with_for_update() if lock else stmt)


# --- accounts and set-up links ---------------------------------------------------------------------------

def create(session: Session, email: str, role: str, app_ids: list[int] | None, by: str) -> Operator:
    """A new operator without a password: it chooses one through a set-up link (`mint_setup`)."""
    email = normalise_email(email)
    if role not in ROLES:
        raise OperatorError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if by_email(session, email) is not None:
        raise OperatorError(f"email: an operator {email!r} already exists")
    row = Operator(email=email, role=role, app_ids=sorted(set(app_ids)) if app_ids else None, failed_attempts=0,
                   created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, app_id=None, actor=by, action="console.operator_created", resource_type="operator",
                 resource_id=str(row.id), details={"role": role, "apps": row.app_ids})
    return row


def mint_setup(session: Session, operator: Operator, by: str, now: datetime | None = None) -> tuple[str, datetime]:
    """A one-time set-up link's token (24 hours); earlier unused links of the operator stop working."""
    now = now or utcnow()
    session.execute(update(SetupToken).where(SetupToken.operator_id == operator.id, SetupToken.used_at.is_(None))
                    .values(used_at=now))
    token = secrets.token_urlsafe(32)
    expires = now + SETUP_TTL
    session.add(SetupToken(token_hash=_digest(token), operator_id=operator.id, created_at=now, expires_at=expires))
    audit.record(session, app_id=None, actor=by, action="console.setup_link_issued", resource_type="operator",
                 resource_id=str(operator.id), details={"expires_at": expires.isoformat()})
    return token, expires


def reset(session: Session, email: str, by: str) -> tuple[Operator, str, datetime]:
    """Forget an operator's password and second factor, end its sessions and issue a new set-up link."""
    row = by_email(session, email, lock=True)
    if row is None:
        raise OperatorError(f"email: no operator {email!r}")
    if row.disabled_at is not None:
        raise OperatorError(f"email: operator {email!r} is disabled")
    row.password_hash = row.totp_secret = row.totp_enabled_at = row.setup_completed_at = None
    row.failed_attempts, row.locked_until = 0, None
    end_all(session, row.id, by, action="console.operator_reset")
    token, expires = mint_setup(session, row, by)
    return row, token, expires


def setup_target(session: Session, token_or_hash: str, *, hashed: bool = False,
                 now: datetime | None = None) -> tuple[Operator, str]:
    """The operator a set-up link is for, and the link's hash (kept by the set-up pages instead of the token)."""
    if not token_or_hash or len(token_or_hash) > 128:
        raise SetupRefused("unknown")
    digest = token_or_hash if hashed else _digest(token_or_hash)
    row = session.get(SetupToken, digest)
    if row is None:
        raise SetupRefused("unknown")
    if row.used_at is not None:
        raise SetupRefused("used")
    if row.expires_at <= (now or utcnow()):
        raise SetupRefused("expired")
    operator = session.get(Operator, row.operator_id)
    if operator is None or operator.disabled_at is not None:
        raise SetupRefused("unknown")
    return operator, digest


def choose_password(session: Session, operator: Operator, password: str) -> str | None:
    """Set the password, or return why it may not be used ("short", "long", "common")."""
    found = passwords.problem(password)
    if found is None:
        operator.password_hash = passwords.hash_password(password)
    return found


def totp_required(operator: Operator) -> bool:
    return operator.role == "admin"


def start_totp(session: Session, keys: KeyMaterial, operator: Operator) -> str:
    """A new secret for the operator's authenticator (in force once `confirm_totp` accepts a code from it)."""
    secret = pyotp.random_base32()
    operator.totp_secret = keys.fields.encrypt(secret.encode(), _totp_context(operator.id))
    operator.totp_enabled_at = None
    return secret


def pending_secret(keys: KeyMaterial, operator: Operator) -> str | None:
    if operator.totp_secret is None:
        return None
    return keys.fields.decrypt(operator.totp_secret, _totp_context(operator.id)).decode()


def provisioning_uri(operator: Operator, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=operator.email, issuer_name=ISSUER)


def _totp_context(operator_id: int) -> str:
    return f"operator-totp:{operator_id}"


def _totp_matches(keys: KeyMaterial, operator: Operator, code: str, now: datetime) -> bool:
    """The code of the current 30-second step or a neighbour (clock drift), never one used before."""
    secret = pending_secret(keys, operator)
    code = (code or "").strip().replace(" ", "")
    if secret is None or not re.fullmatch(r"[0-9]{6}", code):
        return False
    totp, stamp = pyotp.TOTP(secret), int(now.timestamp())
    current = totp.timecode(stamp)
    for offset in (-1, 0, 1):
        step = current + offset
        if hmac.compare_digest(totp.at(stamp, counter_offset=offset), code):
            if operator.totp_last_step is not None and step <= operator.totp_last_step:
                return False  # replayed
            operator.totp_last_step = step
            return True
    return False


def confirm_totp(session: Session, keys: KeyMaterial, operator: Operator, code: str,
                 now: datetime | None = None) -> bool:
    """Turn the enrolled secret on once the operator proves their authenticator holds it."""
    now = now or utcnow()
    if not _totp_matches(keys, operator, code, now):
        return False
    operator.totp_enabled_at = now
    audit.record(session, app_id=None, actor=actor(operator.id), action="console.totp_enrolled",
                 resource_type="operator", resource_id=str(operator.id))
    return True


def finish_setup(session: Session, operator: Operator, token_hash: str, now: datetime | None = None) -> bool:
    """Use up the set-up link and let the operator sign in; False when the link was used meanwhile."""
    now = now or utcnow()
    if operator.password_hash is None or (totp_required(operator) and operator.totp_enabled_at is None):
        raise ValueError("set-up is not complete")
    used = session.execute(update(SetupToken).where(SetupToken.token_hash == token_hash,
                                                    SetupToken.used_at.is_(None)).values(used_at=now)
                           .execution_options(synchronize_session=False)).rowcount
    if used != 1:
        return False
    if operator.totp_enabled_at is None:
        operator.totp_secret = None  # enrolment started and skipped: nothing half-set stays
    operator.setup_completed_at, operator.failed_attempts, operator.locked_until = now, 0, None
    audit.record(session, app_id=None, actor=actor(operator.id), action="console.setup_completed",
                 resource_type="operator", resource_id=str(operator.id),
                 details={"totp": operator.totp_enabled_at is not None})
    return True


# --- signing in ------------------------------------------------------------------------------------------

def authenticate(session: Session, keys: KeyMaterial, email: str, password: str, code: str | None,
                 now: datetime | None = None) -> Operator | None:
    """The operator these credentials sign in, or None. Every answer but success is the same None, and each
    takes one Argon2 verification, so neither the answer nor its time tells an unknown email from a wrong
    password. The fifth failure in a row locks the account for 15 minutes. Failures are recorded in the
    caller's unit of work, which must commit them even though the sign-in fails."""
    now = now or utcnow()
    row = by_email(session, email, lock=True)
    password_ok = passwords.verify(row.password_hash if row is not None else None, password or "")
    if row is None:
        audit.record(session, app_id=None, actor="anonymous", action="console.sign_in_failed",
                     resource_type="operator", resource_id="unknown", details={"reason": "unknown"})
        return None
    who = actor(row.id)
    if row.disabled_at is not None or row.setup_completed_at is None:
        audit.record(session, app_id=None, actor=who, action="console.sign_in_failed", resource_type="operator",
                     resource_id=str(row.id), details={"reason": "disabled" if row.disabled_at else "not set up"})
        return None
    if row.locked_until is not None and row.locked_until > now:
        audit.record(session, app_id=None, actor=who, action="console.sign_in_failed", resource_type="operator",
                     resource_id=str(row.id), details={"reason": "locked"})
        return None
    factor_ok = True
    if row.totp_enabled_at is not None:
        factor_ok = password_ok and _totp_matches(keys, row, code or "", now)
    elif totp_required(row):
        factor_ok = False
    if not (password_ok and factor_ok):
        row.failed_attempts += 1
        audit.record(session, app_id=None, actor=who, action="console.sign_in_failed", resource_type="operator",
                     resource_id=str(row.id), details={"reason": "password" if not password_ok else "code",
                                                       "attempt": row.failed_attempts})
        if row.failed_attempts >= MAX_FAILURES:
            row.failed_attempts, row.locked_until = 0, now + LOCK_FOR
            audit.record(session, app_id=None, actor=who, action="console.operator_locked",
                         resource_type="operator", resource_id=str(row.id),
                         details={"until": row.locked_until.isoformat()})
        return None
    row.failed_attempts, row.locked_until, row.last_sign_in_at = 0, None, now
    if row.password_hash and passwords.needs_rehash(row.password_hash):
        row.password_hash = passwords.hash_password(password)
    audit.record(session, app_id=None, actor=who, action="console.signed_in", resource_type="operator",
                 resource_id=str(row.id), details={"totp": row.totp_enabled_at is not None})
    return row


def open_session(session: Session, operator: Operator, now: datetime | None = None) -> str:
    """A new session's token (for the cookie); the table keeps its hash."""
    now = now or utcnow()
    # The operator's sessions that ended, or went idle, over a day ago are of no more use: dropped here, so the
    # table holds about one row per live browser.
    session.execute(delete(OperatorSession).where(
        OperatorSession.operator_id == operator.id,
        or_(OperatorSession.ended_at < now - KEEP_ENDED, OperatorSession.last_seen_at < now - KEEP_ENDED)))
    token = secrets.token_urlsafe(32)
    session.add(OperatorSession(id=_digest(token), operator_id=operator.id, created_at=now, last_seen_at=now))
    return token


def current(session: Session, token: str | None, now: datetime | None = None) -> SignedIn | None:
    """The operator of a session token, or None: unknown, ended, idle for longer than 30 minutes, or its
    operator disabled. An idle session is ended; a live one's last-seen time is renewed (once a minute)."""
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    found = session.execute(select(OperatorSession, Operator).join(Operator)
                            .where(OperatorSession.id == _digest(token))).first()
    if found is None:
        return None
    row, operator = found
    if row.ended_at is not None or operator.disabled_at is not None:
        return None
    if row.last_seen_at + IDLE < now:
        row.ended_at = now
        return None
    if row.last_seen_at + TOUCH_EVERY < now:
        row.last_seen_at = now
    return SignedIn(operator.id, operator.email, operator.role,
                    None if operator.app_ids is None else tuple(operator.app_ids), row.id)


def end_session(session: Session, token: str | None, now: datetime | None = None) -> int | None:
    """Sign one browser out; the operator's id when the session was live."""
    if not token or len(token) > 128:
        return None
    row = session.get(OperatorSession, _digest(token))
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = now or utcnow()
    audit.record(session, app_id=None, actor=actor(row.operator_id), action="console.signed_out",
                 resource_type="operator", resource_id=str(row.operator_id))
    return row.operator_id


def end_all(session: Session, operator_id: int, by: str, action: str = "console.signed_out_everywhere",
            now: datetime | None = None) -> int:
    """End every live session of the operator (sign-out everywhere); how many there were."""
    ended = session.execute(update(OperatorSession).where(OperatorSession.operator_id == operator_id,
                                                          OperatorSession.ended_at.is_(None))
                            .values(ended_at=now or utcnow()).execution_options(synchronize_session=False)).rowcount
    audit.record(session, app_id=None, actor=by, action=action, resource_type="operator",
                 resource_id=str(operator_id), details={"sessions": ended})
    return ended


def disable(session: Session, email: str, by: str) -> Operator:
    """No more sign-ins, set-up links or sessions for the operator (kept for the audit trail's sake)."""
    row = by_email(session, email, lock=True)
    if row is None:
        raise OperatorError(f"email: no operator {email!r}")
    if row.disabled_at is None:
        row.disabled_at = utcnow()
        session.execute(update(SetupToken).where(SetupToken.operator_id == row.id, SetupToken.used_at.is_(None))
                        .values(used_at=row.disabled_at))
        end_all(session, row.id, by, action="console.operator_disabled")
    return row


def limit(session: Session, email: str, app_ids: list[int] | None, by: str) -> Operator:
    """Limit the operator to some apps (None: every app); its open sessions see the change at their next page."""
    row = by_email(session, email, lock=True)
    if row is None:
        raise OperatorError(f"email: no operator {email!r}")
    before, row.app_ids = row.app_ids, sorted(set(app_ids)) if app_ids else None
    audit.record(session, app_id=None, actor=by, action="console.operator_apps_changed", resource_type="operator",
                 resource_id=str(row.id), details={"from": before, "to": row.app_ids})
    return row


def list_all(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.email)))
