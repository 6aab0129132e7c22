"""A key ring: named 32-byte secrets with one active key, in the JSON form the environment and key files hold."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from service.config import ConfigError
from service.crypto.encoding import b64url, b64url_decode


@dataclass(frozen=True)
class KeyRing:
    """Named 32-byte secrets with one active key; old keys stay for verification and decryption."""

    active: str
    keys: dict[str, bytes]

    @classmethod
    def parse(cls, text: str, name: str) -> "KeyRing":
        try:
            data = json.loads(text)
            keys = {kid: b64url_decode(value) for kid, value in data["keys"].items()}
            active = data["active"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"{name}: expected JSON {{\"active\": kid, \"keys\": {{kid: base64url}}}}") from None
        if active not in keys:
            raise ConfigError(f"{name}: active key {active!r} is not in keys")
        if any(len(k) != 32 for k in keys.values()):
            raise ConfigError(f"{name}: every key must be 32 bytes")
        return cls(active=active, keys=keys)

    def dumps(self) -> str:
        return json.dumps({"active": self.active,
                           "keys": {kid: b64url(k) for kid, k in self.keys.items()}}, indent=2)

    def rotated(self, prefix: str) -> "KeyRing":
        kid = f"{prefix}-{secrets.token_hex(4)}"
        return KeyRing(active=kid, keys={**self.keys, kid: secrets.token_bytes(32)})
