"""AES-256-GCM field encryption with key ids, so values survive key rotation."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from service.crypto.keyring import KeyRing

_VERSION = b"\x01"


class FieldCipher:
    """Format: version(1) | len(kid)(1) | kid | nonce(12) | ciphertext+tag.

    `context` is bound as associated data, so a ciphertext copied to another row or column fails to decrypt.
    """

    def __init__(self, ring: "KeyRing") -> None:
        self.active_kid = ring.active
        self._keys = {kid: AESGCM(key) for kid, key in ring.keys.items()}

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        kid = self.active_kid.encode("ascii")
        nonce = os.urandom(12)
        sealed = self._keys[self.active_kid].encrypt(nonce, plaintext, context.encode())
        return _VERSION + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, context: str) -> bytes:
        if blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        n = blob[1]
        kid = blob[2:2 + n].decode("ascii")
        nonce, sealed = blob[2 + n:14 + n], blob[14 + n:]
        if kid not in self._keys:
            raise ValueError(f"field key {kid!r} is not in the key ring")
        return self._keys[kid].decrypt(nonce, sealed, context.encode())

    def key_id(self, blob: bytes) -> str:
        return blob[2:2 + blob[1]].decode("ascii")
