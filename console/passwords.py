"""Operators' passwords: Argon2id hashes (argon2-cffi), a minimum length and a refusal of the most common
passwords (the 30,000 of the password list the zxcvbn package ships, with their digit and symbol variants)."""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 200  # Argon2 takes any length; a bound keeps a huge form field from costing anything more
# Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 0.1 s a sign-in on one core.
# Hashes carry their parameters, so raising them later rehashes each password at its next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def problem(password: str) -> str | None:
    """Why `password` may not be used ("short", "long", "common"), or None when it may."""
    if len(password) < MIN_LENGTH:
        return "short"
    if len(password) > MAX_LENGTH:
        return "long"
    lowered = password.lower()
    # "Password123!" is "password" with decorations; a word repeated ("dragondragon") is no better.
    core = _EDGES.sub("", lowered)
    half = len(core) // 2
    if {lowered, core, core[:half] if core[:half] == core[half:] else ""} & _common():
        return "common"
    if len(set(lowered)) <= 3:  # aaaaaaaaaaaa, 121212121212
        return "common"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy() -> str:
    return _hasher.hash("an operator who does not exist")


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`. With no stored hash (an unknown email, no password yet) a dummy hash
    is checked all the same, so the answer takes as long either way."""
    try:
        return _hasher.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
