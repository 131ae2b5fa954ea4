"""JSON files: every number is a float (as in sops), tab-indented output, key order kept."""

from __future__ import annotations

import json
import math
import re

from aivault_ops.sops.scalars import format_float
from aivault_ops.sops.tree import Entry, SopsTime, TreeList, TreeMap, Value

PathKey = tuple[str | int, ...]


class JsonStructureError(ValueError):
    """Valid JSON that sops cannot store (not an object, duplicate keys, NaN)."""


def _pairs(pairs: list[tuple[str, object]]) -> TreeMap:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise JsonStructureError("duplicate key in a JSON object")
    return TreeMap([Entry(key, _lists(value)) for key, value in pairs])


def _lists(value: object) -> Value:
    if isinstance(value, list):
        return TreeList([_lists(item) for item in value])
    return value  # type: ignore[return-value]


def _constant(name: str) -> float:
    raise JsonStructureError(f"{name} is not valid JSON")


def parse_json(text: str) -> TreeMap:
    """Parse a JSON object into a tree; numbers become floats."""
    value = json.loads(text, object_pairs_hook=_pairs, parse_int=float, parse_constant=_constant)
    if not isinstance(value, TreeMap):
        raise JsonStructureError("the top level must be a JSON object")
    return value


def dump_json(document: TreeMap) -> str:
    """Tab-indented JSON text, as sops writes it."""
    return _value(document, 0) + "\n"


def _value(value: Value, depth: int) -> str:
    if isinstance(value, TreeMap):
        entries = list(value.entries())
        if not entries:
            return "{}"
        body = [
            _pad(depth + 1) + _string(e.key) + ": " + _value(e.value, depth + 1) for e in entries
        ]
        return "{\n" + ",\n".join(body) + "\n" + _pad(depth) + "}"
    if isinstance(value, TreeList):
        items = list(value.values())
        if not items:
            return "[]"
        body = [_pad(depth + 1) + _value(item, depth + 1) for item in items]
        return "[\n" + ",\n".join(body) + "\n" + _pad(depth) + "]"
    return _scalar(value)


def _scalar(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise JsonStructureError("NaN and infinity cannot be written to JSON")
        return format_float(value)
    if isinstance(value, SopsTime):
        return _string(value.text)
    if isinstance(value, bytes):
        if value:
            raise JsonStructureError("binary values cannot be written to JSON")
        return '""'
    return _string(str(value))


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _pad(depth: int) -> str:
    return "\t" * depth


def json_positions(text: str, document: TreeMap) -> dict[PathKey, tuple[int, int]]:
    """Best-effort (line, column) of each leaf's key, found by scanning keys in order."""
    positions: dict[PathKey, tuple[int, int]] = {}
    cursor = [0]

    def visit(value: Value, where: PathKey, fallback: tuple[int, int]) -> None:
        if isinstance(value, TreeMap):
            for entry in value.entries():
                found = re.compile(re.escape(_string(entry.key)) + r"\s*:").search(text, cursor[0])
                position = fallback
                if found:
                    cursor[0] = found.end()
                    line = text.count("\n", 0, found.start()) + 1
                    position = (line, found.start() - text.rfind("\n", 0, found.start()))
                visit(entry.value, (*where, entry.key), position)
        elif isinstance(value, TreeList):
            for index, item in enumerate(value.values()):
                visit(item, (*where, index), fallback)
        else:
            positions[where] = fallback

    visit(document, (0,), (1, 1))
    return positions
