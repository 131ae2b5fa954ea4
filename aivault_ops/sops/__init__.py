"""SOPS-compatible secret files with age recipients, in pure Python.

Files written here decrypt with `sops -d` (3.x), and files `sops -e` writes
decrypt here, MAC check included, for YAML, JSON, dotenv and binary files.
See docs/secrets.md and the format notes in SOPS-FORMAT.md.
"""

from __future__ import annotations

from aivault_ops.sops.config import CreationRule, SopsConfig
from aivault_ops.sops.edit import KeyUpdate, rotate, set_value, update_keys, write_atomic
from aivault_ops.sops.errors import (
    ConfigError,
    MacMismatch,
    MalformedSopsFile,
    NoIdentity,
    NoMatchingIdentity,
    NotASopsFile,
    SopsError,
    UnsupportedFormat,
    ValueTampered,
)
from aivault_ops.sops.identities import Identities, load_identities
from aivault_ops.sops.metadata import (
    PlaintextLeaf,
    SopsMetadata,
    is_sops_document,
    metadata_from_bytes,
    read_metadata,
)
from aivault_ops.sops.rules import EncryptionRule
from aivault_ops.sops.sopsfile import (
    DecryptedFile,
    KeyPlan,
    decrypt_bytes,
    decrypt_file,
    encrypt_new,
    encrypt_plaintext,
)
from aivault_ops.sops.stores import Format, format_for

__all__ = [
    "ConfigError",
    "CreationRule",
    "DecryptedFile",
    "EncryptionRule",
    "Format",
    "Identities",
    "KeyPlan",
    "KeyUpdate",
    "MacMismatch",
    "MalformedSopsFile",
    "NoIdentity",
    "NoMatchingIdentity",
    "NotASopsFile",
    "PlaintextLeaf",
    "SopsConfig",
    "SopsError",
    "SopsMetadata",
    "UnsupportedFormat",
    "ValueTampered",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt_new",
    "encrypt_plaintext",
    "format_for",
    "is_sops_document",
    "load_identities",
    "metadata_from_bytes",
    "read_metadata",
    "rotate",
    "set_value",
    "update_keys",
    "write_atomic",
]
