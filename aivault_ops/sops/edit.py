"""Change SOPS files as sops does: set a value, re-wrap keys, rotate the data key.

`set` keeps the data key and every unchanged `ENC[…]` string, so a diff
shows only the changed value, `lastmodified` and `mac`. `updatekeys` keeps
the data key and all values and only rebuilds the recipient list. `rotate`
makes a new data key and re-encrypts everything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from aivault_ops.atomic_write import replace_file
from aivault_ops.secret import Secret
from aivault_ops.sops import keys
from aivault_ops.sops.block import SopsBlock, parse_block
from aivault_ops.sops.config import CreationRule, SopsConfig
from aivault_ops.sops.errors import ConfigError, SopsError, UnsupportedFormat
from aivault_ops.sops.identities import Identities
from aivault_ops.sops.sopsfile import KeyPlan, decrypt_file, encrypt_documents, encrypt_new
from aivault_ops.sops.stores import Format, format_for, parse, require_metadata, serialize
from aivault_ops.sops.tree import Entry, TreeMap

SetStatus = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class KeyUpdate:
    """What `updatekeys` changed in one file."""

    path: Path
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: bool


def validate_name(name: str, format_: Format) -> None:
    """Refuse names sops cannot store in this format."""
    if not name or name == "sops" or "\n" in name or "\r" in name:
        raise SopsError(f"invalid secret name {name!r}")
    if format_ == "binary":
        raise UnsupportedFormat(
            "binary SOPS files hold one unnamed value; use a .yaml, .json or .env file"
        )
    if format_ == "dotenv" and (
        "=" in name or name.startswith(("sops_", "#")) or name != name.lstrip()
    ):
        raise SopsError(f"invalid dotenv secret name {name!r}")


def rule_for(config: SopsConfig | None, path: Path) -> CreationRule:
    """The creation rule for a new file, or a ConfigError that says what is missing."""
    if config is None:
        raise ConfigError("no .sops.yaml found in the current directory or above it")
    rule = config.rule_for(path)
    if rule is None:
        raise ConfigError(f"{config.path}: no creation rule matches {config.relative(path)}")
    return rule


def set_value(
    path: Path,
    name: str,
    value: str | Secret,
    config: SopsConfig | None,
    identities: Identities | None,
) -> SetStatus:
    """Create or update the top-level `name` in the SOPS file at `path`."""
    format_ = format_for(path)
    validate_name(name, format_)
    plain = value.reveal_text() if isinstance(value, Secret) else value
    if not path.exists():
        rule = rule_for(config, path)
        document = TreeMap([Entry(name, plain)])
        write_atomic(path, encrypt_new([document], format_=format_, plan=rule.plan, rule=rule.rule))
        return "created"
    if identities is None:
        raise SopsError(f"{path}: an identity is needed to update an existing file")
    decrypted = decrypt_file(path, identities)
    _require_age_only(decrypted.block, str(path))
    if not _assign(decrypted.documents, name, plain):
        return "unchanged"
    data = encrypt_documents(
        decrypted.documents,
        format_=format_,
        key=decrypted.data_key,
        block=decrypted.block,
        stash=decrypted.stash,
    )
    write_atomic(path, data)
    return "updated"


def _assign(documents: list[TreeMap], name: str, value: str) -> bool:
    for document in documents:
        entry = document.get(name)
        if entry is not None:
            if entry.value == value and type(entry.value) is str:
                return False
            entry.value = value
            return True
    documents[0].items.append(Entry(name, value))
    return True


def _require_age_only(block: SopsBlock, source: str) -> None:
    if block.foreign_keys:
        raise UnsupportedFormat(
            f"{source}: also uses {', '.join(block.foreign_keys)} keys; "
            "aivault-ops only writes age keys (edit this file with sops)"
        )


def update_keys(path: Path, config: SopsConfig | None, identities: Identities) -> KeyUpdate:
    """Re-wrap the same data key for the recipients of the current creation rule."""
    plan = rule_for(config, path).plan
    source = str(path)
    format_ = format_for(path)
    raw = parse(_read(path), format_, source)
    block = parse_block(require_metadata(raw, source), source)
    _require_age_only(block, source)
    before, after = block.recipients(), tuple(r for group in plan.groups for r in group)
    added = tuple(r for r in after if r not in before)
    removed = tuple(r for r in before if r not in after)
    current = tuple(tuple(key.recipient for key in group) for group in block.groups)
    threshold = (plan.shamir_threshold or len(plan.groups)) if plan.uses_key_groups else None
    if current == plan.groups and block.shamir_threshold == threshold:
        return KeyUpdate(path, added, removed, changed=False)
    data_key = keys.unwrap(block, identities, source)
    groups = keys.wrap_groups(data_key, plan.groups, threshold)
    new = replace(
        block, groups=groups, uses_key_groups=plan.uses_key_groups, shamir_threshold=threshold
    )
    write_atomic(
        path, serialize(format_, raw.documents, new.to_data(with_rule=format_ != "binary"))
    )
    return KeyUpdate(path, added, removed, changed=True)


def rotate(path: Path, identities: Identities) -> None:
    """A new data key for the same recipients; every value re-encrypted with new IVs."""
    decrypted = decrypt_file(path, identities)
    block = decrypted.block
    _require_age_only(block, str(path))
    groups = tuple(tuple(key.recipient for key in group) for group in block.groups)
    plan = KeyPlan(groups, block.shamir_threshold)
    data_key = keys.new_data_key()
    threshold = (
        (plan.shamir_threshold or len(groups))
        if block.uses_key_groups and len(groups) > 1
        else None
    )
    new = replace(
        block, groups=keys.wrap_groups(data_key, groups, threshold), shamir_threshold=threshold
    )
    data = encrypt_documents(decrypted.documents, format_=decrypted.format, key=data_key, block=new)
    write_atomic(path, data)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SopsError(f"{path}: cannot read: {error.strerror}") from error


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory, fsync, rename; keeps the mode."""
    try:
        _write_atomic(path, data)
    except OSError as error:
        raise SopsError(
            f"{path}: cannot write: {error.strerror or type(error).__name__}"
        ) from error


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data, keep_mode=True)
