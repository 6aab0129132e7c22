"""Key material: the key rings loaded from the environment or files, first-start generation in development, rotation."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from service.config import ConfigError, Settings
from service.crypto.encoding import b64url, b64url_decode
from service.crypto.fields import FieldCipher
from service.crypto.keyring import KeyRing
from service.crypto.pseudonym import Pseudonymiser
from service.crypto.signing import Signer


@dataclass(frozen=True)
class KeyMaterial:
    signer: Signer
    fields: FieldCipher
    pseudonyms: Pseudonymiser


# name in the environment -> (file under instance/keys, kid prefix)
_RINGS = {"SIGNING_KEYS": ("signing.json", "sig"), "FIELD_KEYS": ("field.json", "fld")}


def _write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, replacing any old one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _create_once(path: Path, text: str) -> str:
    """Create a secret file unless another process won the race; return what is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return text


def key_file(settings: Settings, name: str) -> Path:
    return settings.instance_path / "keys" / _RINGS[name][0]


def _ring(settings: Settings, name: str, given: str | None) -> KeyRing:
    if given:
        return KeyRing.parse(given, name)
    path = key_file(settings, name)
    if not path.exists() and settings.production:
        raise ConfigError(f"{name}: required in production (set {name} or {name}_FILE)")
    fresh = KeyRing(active="", keys={}).rotated(_RINGS[name][1])
    return KeyRing.parse(_create_once(path, fresh.dumps()), name)


def _pseudonym_key(settings: Settings) -> bytes:
    if settings.pseudonym_key:
        key = b64url_decode(settings.pseudonym_key)
    else:
        path = settings.instance_path / "keys" / "pseudonym.key"
        if not path.exists() and settings.production:
            raise ConfigError("PSEUDONYM_KEY: required in production (set PSEUDONYM_KEY or PSEUDONYM_KEY_FILE)")
        key = b64url_decode(_create_once(path, b64url(secrets.token_bytes(32))).strip())
    if len(key) < 32:
        raise ConfigError("PSEUDONYM_KEY: must be at least 32 bytes (base64url)")
    return key


def load_key_material(settings: Settings) -> KeyMaterial:
    return KeyMaterial(
        signer=Signer(_ring(settings, "SIGNING_KEYS", settings.signing_keys)),
        fields=FieldCipher(_ring(settings, "FIELD_KEYS", settings.field_keys)),
        pseudonyms=Pseudonymiser(_pseudonym_key(settings)),
    )


def rotate(settings: Settings, name: str) -> str:
    """Add a new active key to a file-based ring and return its id; old keys are kept."""
    given = settings.signing_keys if name == "SIGNING_KEYS" else settings.field_keys
    if given:
        raise ConfigError(f"{name}: keys come from the environment; rotate them in your secret store")
    ring = _ring(settings, name, None).rotated(_RINGS[name][1])
    _write_private(key_file(settings, name), ring.dumps())
    return ring.active
