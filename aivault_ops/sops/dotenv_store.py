"""dotenv files: `KEY=value` lines, `#` comments, metadata flattened into `sops_*` lines.

Values are kept verbatim (quotes and inline `#` included); the only escape
is `\\n` for a newline, exactly as sops reads and writes them.
"""

from __future__ import annotations

import re

from aivault_ops.sops.tree import Comment, Entry, TreeList, TreeMap, Value

_SEGMENT = re.compile(r"__(list)_([0-9]+)|__map_")


class DotenvStructureError(ValueError):
    """A line sops would reject."""


def parse_dotenv(text: str) -> tuple[TreeMap, dict[str, str], dict[str, int]]:
    """The document, the raw `sops_*` lines, and the line number of every key."""
    document = TreeMap()
    metadata: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if line == "":
            continue
        if line.startswith("#"):
            document.items.append(Comment(line[1:]))
            continue
        key, sep, value = line.partition("=")
        if not sep or not line.strip() or line[0].isspace():
            raise DotenvStructureError(f"line {number}: invalid dotenv line")
        value = value.replace("\\n", "\n")
        if key.startswith("sops_"):
            metadata[key.removeprefix("sops_")] = value
            continue
        if key in lines:
            raise DotenvStructureError(f"line {number}: duplicate key")
        lines[key] = number
        document.items.append(Entry(key, value))
    return document, metadata, lines


def dump_dotenv(document: TreeMap, metadata: dict[str, object] | None) -> str:
    """dotenv text; metadata lines sorted by key, newlines escaped as `\\n`."""
    lines = []
    for item in document.items:
        if isinstance(item, Comment):
            lines.append("#" + item.text)
        else:
            lines.append(f"{item.key}={_text(item.value)}")
    flat = flatten(metadata or {}, "sops")
    lines.extend(f"{key}={value}" for key, value in sorted(flat.items()))
    return "".join(line.replace("\n", "\\n") + "\n" for line in lines)


def _text(value: Value) -> str:
    if isinstance(value, TreeMap | TreeList):
        raise DotenvStructureError("dotenv values cannot be nested")
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(data: object, prefix: str, *, in_list: bool = False) -> dict[str, str]:
    """sops' flattening: `_key` at the top, `__map_key` inside lists, `__list_i` for items."""
    if isinstance(data, dict):
        joiner = "__map_" if in_list else "_"
        result: dict[str, str] = {}
        for key, value in data.items():
            result.update(flatten(value, f"{prefix}{joiner}{key}", in_list=in_list))
        return result
    if isinstance(data, list):
        result = {}
        for index, value in enumerate(data):
            result.update(flatten(value, f"{prefix}__list_{index}", in_list=True))
        return result
    return {prefix: _text(data)}  # type: ignore[arg-type]


def unflatten(flat: dict[str, str]) -> dict[str, object]:
    """Rebuild the nested metadata from flattened `sops_*` keys (prefix removed)."""
    root: dict[str, object] = {}
    for key, value in flat.items():
        first = _SEGMENT.search(key)
        head = key[: first.start()] if first else key
        _place(root, head, key[len(head) :], value)
    return root


def _place(
    container: dict[str, object] | list[object], name: str | int, rest: str, value: str
) -> None:
    if not rest:
        _assign(container, name, value)
        return
    match = _SEGMENT.match(rest)
    if match is None:
        raise DotenvStructureError("invalid flattened sops metadata key")
    remainder = rest[match.end() :]
    if match.group(1):
        child: object = _child(container, name, list)
        _place(child, int(match.group(2)), remainder, value)  # type: ignore[arg-type]
        return
    nxt = _SEGMENT.search(remainder)
    sub = remainder[: nxt.start()] if nxt else remainder
    child = _child(container, name, dict)
    _place(child, sub, remainder[len(sub) :], value)  # type: ignore[arg-type]


def _child(container: dict[str, object] | list[object], name: str | int, kind: type) -> object:
    if isinstance(container, list):
        assert isinstance(name, int)
        while len(container) <= name:
            container.append(kind())
        return container[name]
    return container.setdefault(str(name), kind())


def _assign(container: dict[str, object] | list[object], name: str | int, value: str) -> None:
    if isinstance(container, list):
        assert isinstance(name, int)
        while len(container) <= name:
            container.append(None)
        container[name] = value
    else:
        container[str(name)] = value
