"""`.sops.yaml` creation rules: found upward from a directory, first matching rule wins.

`path_regex` is matched (unanchored, as Go's regexp) against the file path
relative to the directory holding `.sops.yaml`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from aivault_ops.sops.errors import ConfigError
from aivault_ops.sops.rules import EncryptionRule, RuleError, rule_from_mapping
from aivault_ops.sops.sopsfile import KeyPlan

CONFIG_NAME = ".sops.yaml"
_FOREIGN_KEYS = ("pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms")


@dataclass(frozen=True)
class CreationRule:
    """One creation rule: which files it covers and who they are encrypted to."""

    index: int
    path_regex: str | None
    plan: KeyPlan
    rule: EncryptionRule

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every recipient of the rule, in order."""
        return tuple(recipient for group in self.plan.groups for recipient in group)

    def matches(self, relative: str) -> bool:
        """Whether this rule covers a path relative to the config directory."""
        return self.path_regex is None or re.search(self.path_regex, relative) is not None


@dataclass(frozen=True)
class SopsConfig:
    """A parsed `.sops.yaml`."""

    path: Path
    rules: tuple[CreationRule, ...]

    @property
    def directory(self) -> Path:
        """The directory rule paths are relative to."""
        return self.path.parent

    @classmethod
    def find(cls, start_dir: Path) -> SopsConfig | None:
        """The nearest `.sops.yaml` in `start_dir` or above it, parsed; None if none exists."""
        current = start_dir.resolve()
        for directory in (current, *current.parents):
            candidate = directory / CONFIG_NAME
            if candidate.is_file():
                return cls.load(candidate)
        return None

    @classmethod
    def load(cls, path: Path) -> SopsConfig:
        """Parse a config file; ConfigError explains what is wrong."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ConfigError(
                f"{path}: cannot read creation rules ({type(error).__name__})"
            ) from error
        rules = data.get("creation_rules") if isinstance(data, Mapping) else None
        if not isinstance(rules, list) or not rules:
            raise ConfigError(f"{path}: no creation_rules")
        return cls(
            path.resolve(), tuple(_rule(path, index, raw) for index, raw in enumerate(rules))
        )

    def relative(self, path: Path) -> str:
        """`path` (relative to cwd, or absolute) relative to the config directory, `/`-separated."""
        absolute = path.resolve()
        return Path(os.path.relpath(absolute, self.directory)).as_posix()

    def rule_for(self, path: Path) -> CreationRule | None:
        """The first rule whose `path_regex` matches the path (relative to the config dir)."""
        relative = self.relative(path)
        return next((rule for rule in self.rules if rule.matches(relative)), None)


def _rule(path: Path, index: int, raw: object) -> CreationRule:
    where = f"{path}: creation_rules[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    regex = raw.get("path_regex")
    if regex is not None and not isinstance(regex, str):
        raise ConfigError(f"{where}: path_regex must be a string")
    try:
        if regex is not None:
            re.compile(regex)
        rule = rule_from_mapping(raw)
    except (re.error, RuleError) as error:
        raise ConfigError(f"{where}: {error}") from error
    return CreationRule(index, regex, _plan(where, raw), rule)


def _plan(where: str, raw: Mapping[str, object]) -> KeyPlan:
    groups_raw = raw.get("key_groups")
    if groups_raw is not None:
        if not isinstance(groups_raw, list) or not groups_raw:
            raise ConfigError(f"{where}: key_groups must be a non-empty list")
        groups = tuple(
            _group(f"{where}.key_groups[{i}]", group) for i, group in enumerate(groups_raw)
        )
    else:
        groups = (_group(where, raw),)
    threshold = raw.get("shamir_threshold")
    if threshold is not None and (
        not isinstance(threshold, int)
        or isinstance(threshold, bool)
        or not 1 <= threshold <= len(groups)
    ):
        raise ConfigError(f"{where}: shamir_threshold must be an integer from 1 to {len(groups)}")
    return KeyPlan(groups, threshold)


def _group(where: str, raw: object) -> tuple[str, ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a key group must be a mapping")
    foreign = [name for name in _FOREIGN_KEYS if raw.get(name)]
    if foreign:
        raise ConfigError(f"{where}: {foreign[0]} keys are not supported; use age recipients")
    recipients = parse_recipients(raw.get("age"))
    if not recipients:
        raise ConfigError(f"{where}: no age recipients")
    return recipients


def parse_recipients(value: object) -> tuple[str, ...]:
    """Recipients from a comma-separated string or a list (whitespace trimmed)."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"age recipients must be strings, found a {type(item).__name__}")
        result.extend(part.strip() for part in item.split(",") if part.strip())
    return tuple(result)
