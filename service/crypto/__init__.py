"""Key material: receipt signing (Ed25519), field encryption (AES-GCM) and subject pseudonyms (HMAC)."""

from service.crypto.encoding import b64url, b64url_decode
from service.crypto.fields import FieldCipher
from service.crypto.keyring import KeyRing
from service.crypto.keys import KeyMaterial, load_key_material
from service.crypto.pseudonym import Pseudonymiser
from service.crypto.signing import Signer

__all__ = [
    "FieldCipher",
    "KeyMaterial",
    "KeyRing",
    "Pseudonymiser",
    "Signer",
    "b64url",
    "b64url_decode",
    "load_key_material",
]
