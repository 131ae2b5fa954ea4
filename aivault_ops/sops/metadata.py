"""What CI can know without a private key: names, recipients, rules, plaintext leaks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aivault_ops.sops import cipher
from aivault_ops.sops.block import SopsBlock, parse_block
from aivault_ops.sops.crypt import is_empty, is_enc_comment
from aivault_ops.sops.errors import SopsError
from aivault_ops.sops.rules import EncryptionRule
from aivault_ops.sops.stores import Format, RawFile, format_for, parse, require_metadata
from aivault_ops.sops.tree import TreeList, TreeMap, Value


@dataclass(frozen=True)
class PlaintextLeaf:
    """A value the file's own rules say must be encrypted, found in plaintext."""

    key_path: tuple[str, ...]
    line: int
    column: int


@dataclass(frozen=True)
class SopsMetadata:
    """The public facts of a SOPS file (no value, no key)."""

    path: Path
    format: Format
    secret_names: tuple[str, ...]
    recipients: tuple[str, ...]
    plaintext_leaves: tuple[PlaintextLeaf, ...]
    rules: EncryptionRule
    key_groups: tuple[tuple[str, ...], ...]
    shamir_threshold: int | None
    lastmodified: str
    version: str
    # Top-level name -> the keys of its value when that is a mapping (SOPS leaves keys in
    # plaintext): what `validate` can tell of a JSON-shaped secret without decrypting it.
    secret_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def fully_encrypted(self) -> bool:
        """True when every leaf that should be encrypted is."""
        return not self.plaintext_leaves


def is_sops_document(data: object) -> bool:
    """A mapping with a top-level `sops` mapping (what marks a SOPS file)."""
    return isinstance(data, Mapping) and isinstance(data.get("sops"), Mapping)


def read_metadata(path: Path) -> SopsMetadata:
    """Read a SOPS file's metadata without decrypting anything."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SopsError(f"{path}: cannot read: {error.strerror}") from error
    return metadata_from_bytes(data, path=path, format_=format_for(path))


def metadata_from_bytes(data: bytes, *, path: Path, format_: Format) -> SopsMetadata:
    """`read_metadata` for bytes already in memory."""
    source = str(path)
    raw = parse(data, format_, source, keep_comments=False)
    block = parse_block(require_metadata(raw, source), source)
    return SopsMetadata(
        path=path,
        format=format_,
        secret_names=_names(raw),
        recipients=block.recipients(),
        plaintext_leaves=tuple(_plaintext_leaves(raw, block)),
        rules=block.rule,
        key_groups=tuple(tuple(key.recipient for key in group) for group in block.groups),
        shamir_threshold=block.shamir_threshold,
        lastmodified=block.lastmodified,
        version=block.version,
        secret_fields=_fields(raw),
    )


def _names(raw: RawFile) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for document in raw.documents:
        seen.update(dict.fromkeys(document.keys()))
    return tuple(seen)


def _fields(raw: RawFile) -> dict[str, tuple[str, ...]]:
    """As `SopsFile.secrets` reads them: the first document holding a name wins."""
    seen: set[str] = set()
    fields: dict[str, tuple[str, ...]] = {}
    for document in raw.documents:
        for entry in document.entries():
            if entry.key not in seen and isinstance(entry.value, TreeMap):
                fields[entry.key] = tuple(entry.value.keys())
            seen.add(entry.key)
    return fields


def _plaintext_leaves(raw: RawFile, block: SopsBlock) -> Iterator[PlaintextLeaf]:
    for index, document in enumerate(raw.documents):
        for where, keys, value in _leaves(document, (index,), ()):
            if block.rule.should_encrypt(keys) and not is_empty(value) and not cipher.is_enc(value):
                line, column = raw.positions.get(where, (1, 1))
                yield PlaintextLeaf(keys, line, column)


def _leaves(
    value: Value, where: tuple[str | int, ...], keys: tuple[str, ...]
) -> Iterator[tuple[tuple[str | int, ...], tuple[str, ...], Value]]:
    if isinstance(value, TreeMap):
        for entry in value.entries():
            yield from _leaves(entry.value, (*where, entry.key), (*keys, entry.key))
    elif isinstance(value, TreeList):
        for position, item in enumerate(value.values()):
            if not is_enc_comment(item):
                yield from _leaves(item, (*where, position), keys)
    else:
        yield where, keys, value
