"""What changes between two compiled policies (pure): `+`, `-`, `~` with fields.

Secrets appear only by file, name and digest; a policy never holds a value,
so neither can a plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SECTIONS = (
    ("providers", "provider"),
    ("credentials", "credential"),
    ("capabilities", "capability"),
    ("consumers", "consumer"),
    ("secretFiles", "secret"),
)
# Capability fields are shown with the names users write in manifests.
_DISPLAY = {
    "capability": {
        "methods": "allow.methods",
        "pathPrefixes": "allow.pathPrefixes",
        "hosts": "allow.hosts",
        "operations": "allow.operations",
        "copySourcePrefixes": "allow.copySourcePrefixes",
    },
    "secret": {"sha256": "content"},
}
_HIDDEN_VALUES = {("consumer", "tokenSha256")}


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    op: str  # "+", "-", "~"
    kind: str
    name: str
    fields: tuple[FieldChange, ...] = field(default_factory=tuple)


def diff_policies(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    """Every added, removed and changed object, section by section, sorted by name."""
    changes: list[Change] = []
    for section, kind in _SECTIONS:
        before = (old or {}).get(section, {})
        after = new.get(section, {})
        for name in sorted(set(before) | set(after)):
            if name not in before:
                changes.append(Change("+", kind, name))
            elif name not in after:
                changes.append(Change("-", kind, name))
            elif before[name] != after[name]:
                changes.append(Change("~", kind, name, _fields(kind, before[name], after[name])))
    return changes


def _fields(
    kind: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[FieldChange, ...]:
    flat_before, flat_after = _flatten(before), _flatten(after)
    names = _DISPLAY.get(kind, {})
    return tuple(
        FieldChange(names.get(key, key), flat_before.get(key), flat_after.get(key))
        for key in sorted(set(flat_before) | set(flat_after))
        if flat_before.get(key) != flat_after.get(key)
    )


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and path != "auth":
            flat.update(_flatten(item, f"{path}."))  # an empty mapping adds nothing
        else:
            flat[path] = item
    return flat


def render_text(changes: list[Change]) -> str:
    """Terraform-style lines: `~ capability my-api/users: allow.methods [GET] → [GET, POST]`."""
    if not changes:
        return "No changes.\n"
    lines = [_line(change) for change in changes]
    counts = {op: sum(1 for c in changes if c.op == op) for op in "+~-"}
    lines.append(f"Plan: {counts['+']} to add, {counts['~']} to change, {counts['-']} to remove.")
    return "\n".join(lines) + "\n"


def _line(change: Change) -> str:
    head = f"{change.op} {change.kind} {change.name}"
    if not change.fields:
        return head
    parts = [_field_text(change.kind, item) for item in change.fields]
    return f"{head}: " + "; ".join(parts)


def _field_text(kind: str, item: FieldChange) -> str:
    if (kind, item.field) in _HIDDEN_VALUES:
        return f"{item.field} changed"
    return f"{item.field} {_show(item.old)} → {_show(item.new)}"


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return value[:12] + "…" if len(value) == 64 and value.isalnum() else value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def render_json(changes: list[Change], *, base: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plan as data: the bundle compared against and every change."""
    return {
        "base": dict(base) if base is not None else None,
        "changes": [
            {
                "op": change.op,
                "kind": change.kind,
                "name": change.name,
                "fields": [
                    {"field": f.field, "old": f.old, "new": f.new}
                    if (change.kind, f.field) not in _HIDDEN_VALUES
                    else {"field": f.field, "changed": True}
                    for f in change.fields
                ],
            }
            for change in changes
        ],
    }
