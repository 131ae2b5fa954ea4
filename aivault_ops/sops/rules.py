"""Which leaves are encrypted: the one suffix/regex rule of a SOPS file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

RuleKind = Literal["unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex"]
RULE_KINDS: tuple[RuleKind, ...] = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
)
COMMENT_RULES = ("encrypted_comment_regex", "unencrypted_comment_regex")
DEFAULT_SUFFIX = "_unencrypted"


class RuleError(ValueError):
    """Conflicting or invalid rule fields."""


@dataclass(frozen=True)
class EncryptionRule:
    """One of sops' four rules; `kind=None` is the binary store (encrypt everything)."""

    kind: RuleKind | None = "unencrypted_suffix"
    value: str = DEFAULT_SUFFIX
    mac_only_encrypted: bool = False
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind in ("unencrypted_regex", "encrypted_regex"):
            try:
                object.__setattr__(self, "_pattern", re.compile(self.value))
            except re.error as error:
                raise RuleError(f"invalid {self.kind} {self.value!r}: {error}") from error

    def should_encrypt(self, path: tuple[str, ...]) -> bool:
        """Whether a leaf at this key path must be encrypted (any ancestor key counts)."""
        if self.kind is None:
            return True
        hit = any(self._matches(key) for key in path)
        return not hit if self.kind.startswith("unencrypted") else hit

    def _matches(self, key: str) -> bool:
        if self._pattern is not None:
            return self._pattern.search(key) is not None
        return key.endswith(self.value)

    def fields(self) -> dict[str, str]:
        """The metadata field this rule writes (none for the binary store)."""
        return {} if self.kind is None else {self.kind: self.value}


def rule_from_mapping(data: Mapping[str, object], *, default: bool = True) -> EncryptionRule:
    """Read the rule fields of sops metadata or a creation rule; at most one may be set."""
    present = [kind for kind in RULE_KINDS if data.get(kind) not in (None, "")]
    comment_rules = [name for name in COMMENT_RULES if data.get(name) not in (None, "")]
    if comment_rules:
        raise RuleError(f"{comment_rules[0]} is not supported")
    if len(present) > 1:
        raise RuleError("cannot use more than one of " + ", ".join(RULE_KINDS) + " together")
    mac_only = data.get("mac_only_encrypted") is True
    if not present:
        kind: RuleKind | None = "unencrypted_suffix" if default else None
        return EncryptionRule(kind, DEFAULT_SUFFIX if default else "", mac_only)
    value = data[present[0]]
    if not isinstance(value, str):
        raise RuleError(f"{present[0]} must be a string")
    return EncryptionRule(present[0], value, mac_only)
