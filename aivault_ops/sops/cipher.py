"""`ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` strings: AES-256-GCM with 32-byte IVs."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_ENC = re.compile(r"ENC\[AES256_GCM,data:(.*),iv:(.*),tag:(.*),type:(.*)\]", re.DOTALL)
_IV_BYTES = 32
_TAG_BYTES = 16


class CipherError(ValueError):
    """The string is not an ENC value, or authentication failed."""


@dataclass(frozen=True)
class EncValue:
    """The parsed parts of one ENC string."""

    data: bytes
    iv: bytes
    tag: bytes
    type: str


def is_enc(value: object) -> bool:
    """True when `value` is a string in sops' encrypted value format."""
    return isinstance(value, str) and _ENC.fullmatch(value) is not None


def parse_enc(text: str) -> EncValue:
    """Split an ENC string into its parts; CipherError when it is not one."""
    match = _ENC.fullmatch(text)
    if not match:
        raise CipherError("does not match sops' data format")
    data, iv, tag, type_ = match.groups()
    try:
        parts = [base64.b64decode(part, validate=True) for part in (data, iv, tag)]
    except binascii.Error as error:
        raise CipherError("invalid base64 in encrypted value") from error
    return EncValue(parts[0], parts[1], parts[2], type_)


def decrypt(key: bytes, text: str, aad: bytes) -> tuple[bytes, str]:
    """Decrypt an ENC string; returns (plaintext, type). CipherError on any failure."""
    enc = parse_enc(text)
    if not enc.iv or len(enc.tag) != _TAG_BYTES:
        raise CipherError("invalid IV or tag length")
    try:
        plaintext = AESGCM(key).decrypt(enc.iv, enc.data + enc.tag, aad)
    except InvalidTag as error:
        raise CipherError("message authentication failed") from error
    return plaintext, enc.type


def encrypt(key: bytes, plaintext: bytes, aad: bytes, type_: str) -> str:
    """Encrypt to an ENC string with a fresh random 32-byte IV."""
    iv = os.urandom(_IV_BYTES)
    sealed = AESGCM(key).encrypt(iv, plaintext, aad)
    data, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    fields = (base64.b64encode(part).decode() for part in (data, iv, tag))
    return "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]".format(*fields, type_)
