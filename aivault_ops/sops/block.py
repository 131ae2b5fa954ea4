"""The `sops` metadata block: parsed from and written to plain data, in sops' order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aivault_ops.sops.errors import MalformedSopsFile, UnsupportedFormat
from aivault_ops.sops.rules import EncryptionRule, RuleError, rule_from_mapping

SOPS_VERSION = "3.11.0"
_MASTER_KEY_TYPES = ("pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms")


@dataclass(frozen=True)
class AgeKey:
    """One recipient and the data key (or Shamir share) wrapped for it."""

    recipient: str
    enc: str


@dataclass(frozen=True)
class SopsBlock:
    """Everything under `sops:` that this implementation reads and writes."""

    groups: tuple[tuple[AgeKey, ...], ...]
    uses_key_groups: bool
    shamir_threshold: int | None
    lastmodified: str
    mac: str
    rule: EncryptionRule
    version: str
    foreign_keys: tuple[str, ...] = ()

    def recipients(self) -> tuple[str, ...]:
        """Every age recipient, key groups included, in file order."""
        return tuple(key.recipient for group in self.groups for key in group)

    def to_data(self, *, with_rule: bool = True) -> dict[str, object]:
        """Plain data in the field order sops writes."""
        data: dict[str, object] = {}
        if self.uses_key_groups:
            if self.shamir_threshold is not None:
                data["shamir_threshold"] = self.shamir_threshold
            data["key_groups"] = [{"age": _age_list(group)} for group in self.groups]
        else:
            data["age"] = _age_list(self.groups[0] if self.groups else ())
        data["lastmodified"] = self.lastmodified
        data["mac"] = self.mac
        if with_rule:
            data.update(self.rule.fields())
        if self.rule.mac_only_encrypted:
            data["mac_only_encrypted"] = True
        data["version"] = self.version
        return data


def _age_list(group: tuple[AgeKey, ...]) -> list[dict[str, str]]:
    return [{"recipient": key.recipient, "enc": key.enc} for key in group]


def parse_block(data: object, source: str) -> SopsBlock:
    """Validate the metadata mapping of a file; MalformedSopsFile names what is wrong."""
    if not isinstance(data, Mapping):
        raise MalformedSopsFile(f"{source}: the sops metadata is not a mapping")
    version = _text(data, "version", source)
    if not version:
        raise MalformedSopsFile(f"{source}: sops metadata has no version")
    try:
        rule = rule_from_mapping({**data, "mac_only_encrypted": _flag(data, source)})
    except RuleError as error:
        raise UnsupportedFormat(f"{source}: sops metadata: {error}") from error
    groups, uses_groups = _groups(data, source)
    return SopsBlock(
        groups=groups,
        uses_key_groups=uses_groups,
        shamir_threshold=_threshold(data, source),
        lastmodified=_text(data, "lastmodified", source),
        mac=_text(data, "mac", source),
        rule=rule,
        version=version,
        foreign_keys=_foreign(data),
    )


def _text(data: Mapping[str, object], key: str, source: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedSopsFile(f"{source}: sops metadata field {key} must be a string")
    return value


def _flag(data: Mapping[str, object], source: str) -> bool:
    value = data.get("mac_only_encrypted")
    if value in (None, False, "false"):
        return False
    if value in (True, "true"):
        return True
    raise MalformedSopsFile(f"{source}: sops metadata field mac_only_encrypted must be a boolean")


def _threshold(data: Mapping[str, object], source: str) -> int | None:
    value = data.get("shamir_threshold")
    if value is None:
        return None
    try:
        number = int(str(value).removesuffix(".0")) if not isinstance(value, bool) else -1
    except ValueError:
        number = -1
    if number < 1:
        raise MalformedSopsFile(
            f"{source}: sops metadata field shamir_threshold must be an integer"
        )
    return number


def _groups(data: Mapping[str, object], source: str) -> tuple[tuple[tuple[AgeKey, ...], ...], bool]:
    key_groups = data.get("key_groups")
    if key_groups:
        if not isinstance(key_groups, list):
            raise MalformedSopsFile(f"{source}: sops metadata field key_groups must be a list")
        return tuple(_age_keys(group, source) for group in key_groups), True
    return (_age_keys(data, source),), False


def _age_keys(group: object, source: str) -> tuple[AgeKey, ...]:
    if not isinstance(group, Mapping):
        raise MalformedSopsFile(f"{source}: a sops key group is not a mapping")
    entries = group.get("age") or []
    if not isinstance(entries, list):
        raise MalformedSopsFile(f"{source}: sops metadata field age must be a list")
    keys = []
    for entry in entries:
        recipient = entry.get("recipient") if isinstance(entry, Mapping) else None
        enc = entry.get("enc") if isinstance(entry, Mapping) else None
        if not isinstance(recipient, str) or not isinstance(enc, str):
            raise MalformedSopsFile(f"{source}: an age entry lacks recipient or enc")
        keys.append(AgeKey(recipient, enc))
    return tuple(keys)


def _foreign(data: Mapping[str, object]) -> tuple[str, ...]:
    found = {name for name in _MASTER_KEY_TYPES if data.get(name)}
    groups = data.get("key_groups")
    for group in groups if isinstance(groups, list) else []:
        if isinstance(group, Mapping):
            found.update(name for name in _MASTER_KEY_TYPES if group.get(name))
    return tuple(sorted(found))
