"""signatures.json: Ed25519 signatures over the exact bytes of manifest.json."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aivault_ops import schema_check
from aivault_ops.bundle.errors import MalformedJson, SignaturesInvalid, Unsigned
from aivault_ops.bundle.keys import SigningKey
from aivault_ops.bundle.paths import SIGNATURES
from aivault_ops.canonical_json import JsonError, canonical_json, loads_strict

ALG: Final = "ed25519"
_KEYID = re.compile(r"[0-9a-f]{16}")
_SIGNATURE_BYTES: Final = 64


@dataclass(frozen=True)
class Signature:
    """One signature: who (keyid), how (alg) and the 64 signature bytes."""

    keyid: str
    sig: bytes
    alg: str = ALG

    def __post_init__(self) -> None:
        """Re-check the invariants the schema states (keyid shape, alg, length)."""
        if self.alg != ALG or not _KEYID.fullmatch(self.keyid):
            raise SignaturesInvalid(f"{SIGNATURES}: bad keyid or alg in {self.keyid!r}")
        if len(self.sig) != _SIGNATURE_BYTES:
            raise SignaturesInvalid(f"{SIGNATURES}: a signature has {_SIGNATURE_BYTES} bytes")

    def to_json(self) -> dict[str, str]:
        """The JSON object for this signature."""
        return {"keyid": self.keyid, "alg": self.alg, "sig": base64.b64encode(self.sig).decode()}


def sign_manifest(manifest_bytes: bytes, key: SigningKey) -> Signature:
    """Sign the exact bytes of manifest.json."""
    return Signature(keyid=key.public_key.keyid, sig=key.sign(manifest_bytes))


def encode_signatures(signatures: Sequence[Signature]) -> bytes:
    """signatures.json bytes (canonical JSON)."""
    return canonical_json([signature.to_json() for signature in signatures])


def parse_signatures(data: bytes) -> tuple[Signature, ...]:
    """Parse signatures.json; an empty list is `Unsigned`, a bad shape `SignaturesInvalid`."""
    try:
        obj = loads_strict(data)
    except JsonError as error:
        raise MalformedJson(f"{SIGNATURES}: {error}") from None
    if obj == []:
        raise Unsigned(f"{SIGNATURES} holds no signatures; the bundle is unsigned")
    problem = schema_check.schema_problem("bundle-signatures", obj)
    if problem is not None:
        raise SignaturesInvalid(f"{SIGNATURES}: {problem}")
    return tuple(
        Signature(keyid=item["keyid"], alg=item["alg"], sig=_decode(item["sig"])) for item in obj
    )


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SignaturesInvalid(f"{SIGNATURES}: a signature is not valid base64") from None
