"""Compact JWS (RFC 7515) signed with EdDSA over Ed25519, and the JWKS that verifies it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.crypto.encoding import b64url, b64url_decode

if TYPE_CHECKING:
    from service.crypto.keyring import KeyRing


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class Signer:
    """Signs with the ring's active key; verifies with any key of the ring (old keys survive rotation)."""

    def __init__(self, ring: "KeyRing") -> None:
        self.active_kid = ring.active
        self._private = {kid: Ed25519PrivateKey.from_private_bytes(seed) for kid, seed in ring.keys.items()}
        self._public: dict[str, Ed25519PublicKey] = {kid: k.public_key() for kid, k in self._private.items()}

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        header = {"alg": "EdDSA", "kid": self.active_kid, "typ": typ}
        signing_input = f"{b64url(canonical_json(header))}.{b64url(canonical_json(claims))}"
        signature = self._private[self.active_kid].sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(signature)}"

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a token signed by one of our keys, or raise ValueError."""
        try:
            head, body, sig = token.split(".")
            header = json.loads(b64url_decode(head))
            key = self._public[header["kid"]]
            if header.get("alg") != "EdDSA":
                raise ValueError("unexpected alg")
            key.verify(b64url_decode(sig), f"{head}.{body}".encode("ascii"))
            return json.loads(b64url_decode(body))
        except (KeyError, InvalidSignature, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError("invalid signature or token") from exc

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        keys = []
        for kid, public in self._public.items():
            raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            keys.append({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid,
                         "alg": "EdDSA", "use": "sig"})
        # The active key first: clients that take the first key get the right one.
        keys.sort(key=lambda k: k["kid"] != self.active_kid)
        return {"keys": keys}
