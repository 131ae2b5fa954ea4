"""Decrypt and encrypt whole SOPS files in memory: the data key, the values, the MAC."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from aivault_ops.secret import Secret
from aivault_ops.sops import keys, mac
from aivault_ops.sops.block import SOPS_VERSION, SopsBlock, parse_block
from aivault_ops.sops.crypt import Decryptor, Encryptor, Stash
from aivault_ops.sops.errors import SopsError, UnsupportedFormat
from aivault_ops.sops.identities import Identities
from aivault_ops.sops.rules import EncryptionRule
from aivault_ops.sops.stores import (
    FORMATS,
    Format,
    format_for,
    parse,
    parse_plaintext,
    require_metadata,
    serialize,
    serialize_plaintext,
)
from aivault_ops.sops.tree import SopsTime, TreeMap, Value, to_python


@dataclass(frozen=True)
class KeyPlan:
    """Who a file is encrypted to: age recipient groups and an optional Shamir threshold."""

    groups: tuple[tuple[str, ...], ...]
    shamir_threshold: int | None = None

    @property
    def uses_key_groups(self) -> bool:
        """Several groups are written as `key_groups`; one group as the flat `age` list."""
        return len(self.groups) > 1


class DecryptedFile:
    """A decrypted SOPS file held in memory; nothing here prints a value."""

    def __init__(
        self,
        source: str,
        format_: Format,
        documents: list[TreeMap],
        block: SopsBlock,
        key: bytes,
        stash: Stash,
    ) -> None:
        self.source = source
        self.format = format_
        self.documents = documents
        self.block = block
        self._key = key
        self._stash = stash

    def __repr__(self) -> str:
        return f"DecryptedFile({self.source!r}, names={list(self.names())!r})"

    def names(self) -> tuple[str, ...]:
        """Top-level names in file order (the union over YAML documents)."""
        seen: dict[str, None] = {}
        for document in self.documents:
            seen.update(dict.fromkeys(document.keys()))
        return tuple(seen)

    def secrets(self) -> dict[str, Secret]:
        """Top-level name → Secret; nested values become canonical JSON text."""
        result: dict[str, Secret] = {}
        for document in self.documents:
            for entry in document.entries():
                result.setdefault(entry.key, secret_of(entry.value))
        return result

    def reveal_plaintext(self) -> bytes:
        """The whole plaintext file as `sops -d` would print it (handle with care)."""
        return serialize_plaintext(self.format, self.documents)

    @property
    def data_key(self) -> bytes:
        """The file's data key (for re-encrypting after an edit)."""
        return self._key

    @property
    def stash(self) -> Stash:
        """ENC strings of unchanged values, reused on re-encryption as sops does."""
        return self._stash


def secret_of(value: Value) -> Secret:
    """A value as a Secret: strings, bytes and times as they are, others as canonical JSON."""
    if isinstance(value, bytes | str):
        return Secret(value)
    if isinstance(value, SopsTime):
        return Secret(value.text)
    data = _plain(to_python(value))
    return Secret(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def _plain(data: object) -> object:
    if isinstance(data, dict):
        return {key: _plain(item) for key, item in data.items()}
    if isinstance(data, list):
        return [_plain(item) for item in data]
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data.text if isinstance(data, SopsTime) else data


def decrypt_bytes(
    data: bytes, *, format: str, identities: Identities, source_name: str
) -> DecryptedFile:
    """Decrypt a SOPS file from memory, checking every value and the MAC."""
    format_ = _check_format(format, source_name)
    raw = parse(data, format_, source_name)
    block = parse_block(require_metadata(raw, source_name), source_name)
    key = keys.unwrap(block, identities, source_name)
    walker = Decryptor(key, block.rule, source_name, binary=format_ == "binary")
    documents = [walker.document(document) for document in raw.documents]
    mac.check_mac(key, block.mac, block.lastmodified, walker.digest(), source_name)
    return DecryptedFile(source_name, format_, documents, block, key, walker.stash)


def decrypt_file(path: Path, identities: Identities) -> DecryptedFile:
    """Decrypt the SOPS file at `path` (format from its extension, as sops does)."""
    return decrypt_bytes(
        _read(path), format=format_for(path), identities=identities, source_name=str(path)
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SopsError(f"{path}: cannot read: {error.strerror}") from error


def _check_format(format_: str, source: str) -> Format:
    for known in FORMATS:
        if format_ == known:
            return known
    raise UnsupportedFormat(
        f"{source}: unsupported format {format_!r} (yaml, json, dotenv, binary)"
    )


def encrypt_documents(
    documents: list[TreeMap],
    *,
    format_: Format,
    key: bytes,
    block: SopsBlock,
    stash: Stash | None = None,
) -> bytes:
    """Encrypt plaintext documents under `key`; `block` supplies keys and rule, MAC is renewed."""
    walker = Encryptor(key, block.rule, dict(stash or {}))
    encrypted = [walker.document(document) for document in documents]
    lastmodified = mac.now_lastmodified()
    sealed = replace(
        block, lastmodified=lastmodified, mac=mac.encrypt_mac(key, walker.digest(), lastmodified)
    )
    return serialize(format_, encrypted, sealed.to_data(with_rule=format_ != "binary"))


def new_block(plan: KeyPlan, rule: EncryptionRule, key: bytes, format_: Format) -> SopsBlock:
    """Metadata for a new file: the key wrapped for every recipient, the rule, the version."""
    if format_ == "binary":
        rule = EncryptionRule(None, "", rule.mac_only_encrypted)
    threshold = (plan.shamir_threshold or len(plan.groups)) if plan.uses_key_groups else None
    return SopsBlock(
        groups=keys.wrap_groups(key, plan.groups, threshold),
        uses_key_groups=plan.uses_key_groups,
        shamir_threshold=threshold,
        lastmodified="",
        mac="",
        rule=rule,
        version=SOPS_VERSION,
    )


def encrypt_new(
    documents: list[TreeMap], *, format_: Format, plan: KeyPlan, rule: EncryptionRule
) -> bytes:
    """A brand-new SOPS file: fresh data key, every value encrypted."""
    key = keys.new_data_key()
    block = new_block(plan, rule, key, format_)
    return encrypt_documents(documents, format_=format_, key=key, block=block)


def encrypt_plaintext(
    data: bytes, *, format_: Format, plan: KeyPlan, rule: EncryptionRule, source: str = "<input>"
) -> bytes:
    """Encrypt a plaintext file's bytes as `sops -e` does."""
    documents = parse_plaintext(data, format_, source)
    return encrypt_new(documents, format_=format_, plan=plan, rule=rule)
