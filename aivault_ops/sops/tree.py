"""The ordered, comment-preserving document tree shared by every store.

Key order is bound into the SOPS MAC, so mappings are lists of entries, never
dicts. Reprs never show leaf values: a decrypted tree printed by accident
shows keys and `[secret]` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from aivault_ops.secret import MASK


@dataclass(frozen=True)
class SopsTime:
    """A YAML timestamp, kept as Go RFC3339Nano text (sops' `type:time`)."""

    text: str

    def __repr__(self) -> str:
        return f"SopsTime({MASK})"


@dataclass
class Comment:
    """A comment line; `text` is what follows `#` (leading space included)."""

    text: str

    def __repr__(self) -> str:
        return f"Comment({MASK})"


Leaf = str | int | float | bool | None | SopsTime | bytes


@dataclass
class Entry:
    """One `key: value` pair of a mapping."""

    key: str
    value: Leaf | TreeMap | TreeList

    def __repr__(self) -> str:
        return f"Entry({self.key!r}, {_masked(self.value)})"


@dataclass
class TreeMap:
    """An ordered mapping with interleaved comments."""

    items: list[Entry | Comment] = field(default_factory=list)

    def entries(self) -> Iterator[Entry]:
        """The key/value entries, skipping comments."""
        return (item for item in self.items if isinstance(item, Entry))

    def get(self, key: str) -> Entry | None:
        """The entry for `key`, if present."""
        return next((entry for entry in self.entries() if entry.key == key), None)

    def keys(self) -> list[str]:
        """The keys in order."""
        return [entry.key for entry in self.entries()]

    def __repr__(self) -> str:
        return "TreeMap(" + ", ".join(repr(item) for item in self.items) + ")"


@dataclass
class TreeList:
    """An ordered sequence with interleaved comments."""

    items: list[Leaf | TreeMap | TreeList | Comment] = field(default_factory=list)

    def values(self) -> Iterator[Leaf | TreeMap | TreeList]:
        """The items, skipping comments."""
        return (item for item in self.items if not isinstance(item, Comment))

    def __repr__(self) -> str:
        return "TreeList(" + ", ".join(_masked(item) for item in self.items) + ")"


Value = Leaf | TreeMap | TreeList


def _masked(value: object) -> str:
    if isinstance(value, TreeMap | TreeList | Comment):
        return repr(value)
    return MASK


def is_leaf(value: object) -> bool:
    """True for scalar values (not containers, not comments)."""
    return not isinstance(value, TreeMap | TreeList | Comment)


def to_python(value: Value) -> object:
    """Plain Python data (dicts, lists, scalars) without comments, for comparisons."""
    if isinstance(value, TreeMap):
        return {entry.key: to_python(entry.value) for entry in value.entries()}
    if isinstance(value, TreeList):
        return [to_python(item) for item in value.values()]
    return value


def from_python(value: object) -> Value:
    """Build a tree from plain Python data (dicts keep their insertion order)."""
    if isinstance(value, dict):
        return TreeMap([Entry(str(key), from_python(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return TreeList([from_python(item) for item in value])
    if value is None or isinstance(value, str | int | float | bool | bytes | SopsTime):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a SOPS tree")
