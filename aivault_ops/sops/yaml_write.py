"""Write trees as YAML in sops' style: 4-space indents, comments as `#…` lines.

Scalars are written plain only when both yaml.v3 and YAML 1.1 readers give
back the same string; everything else is double-quoted with escapes.
"""

from __future__ import annotations

import math
import re

import yaml
from yaml.resolver import Resolver

from aivault_ops.sops.tree import Comment, Entry, Leaf, SopsTime, TreeList, TreeMap, Value
from aivault_ops.sops.yaml_resolve import UnsupportedScalar, resolve_plain

_INDENT = 4
_SAFE_CHARS = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]*")
_RESOLVER = Resolver()
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def dump_documents(documents: list[TreeMap]) -> str:
    """YAML text for one or more documents (separated by `---`)."""
    return "---\n".join("\n".join(_map_lines(doc, 0) or ["{}"]) + "\n" for doc in documents)


def _map_lines(node: TreeMap, indent: int, child: int | None = None) -> list[str]:
    """Keys at `indent`; nested blocks at `child` (yaml.v3 indents the children of a
    mapping that is a list item from the dash, not from the keys)."""
    lines: list[str] = []
    for item in node.items:
        if isinstance(item, Comment):
            lines.append(" " * indent + "#" + item.text)
        else:
            lines.extend(_entry_lines(item, indent, indent + _INDENT if child is None else child))
    return lines


def _entry_lines(entry: Entry, indent: int, child: int) -> list[str]:
    head = " " * indent + format_key(entry.key) + ":"
    value = entry.value
    if isinstance(value, TreeMap) and any(True for _ in value.entries()):
        return [head, *_map_lines(value, child)]
    if isinstance(value, TreeList) and any(True for _ in value.values()):
        return [head, *_list_lines(value, child)]
    if _is_block(value):
        return [head + " |", *_block_lines(str(value), child)]
    return [head + " " + _inline(value)]


def _list_lines(node: TreeList, indent: int) -> list[str]:
    lines: list[str] = []
    for item in node.items:
        if isinstance(item, Comment):
            lines.append(" " * indent + "#" + item.text)
        else:
            lines.extend(_item_lines(item, indent))
    return lines


def _item_lines(item: Value, indent: int) -> list[str]:
    dash = " " * indent + "- "
    if isinstance(item, TreeMap | TreeList):
        leading = _leading_comments(item)
        body = item.items[len(leading) :]
        if any(not isinstance(part, Comment) for part in body):
            inner = TreeMap(body) if isinstance(item, TreeMap) else TreeList(body)  # type: ignore[arg-type]
            lines = (
                _map_lines(inner, indent + 2, indent + _INDENT)
                if isinstance(inner, TreeMap)
                else _list_lines(inner, indent + 2)
            )
            comments = [" " * indent + "#" + comment.text for comment in leading]
            return [*comments, dash + lines[0][indent + 2 :], *lines[1:]]
    if _is_block(item):
        return [dash + "|", *_block_lines(str(item), indent + _INDENT)]
    return [dash + _inline(item)]


def _leading_comments(node: TreeMap | TreeList) -> list[Comment]:
    leading: list[Comment] = []
    for part in node.items:
        if not isinstance(part, Comment):
            break
        leading.append(part)
    return leading


def _inline(value: Value) -> str:
    if isinstance(value, TreeMap):
        return "{}"
    if isinstance(value, TreeList):
        return "[]"
    return format_scalar(value)


def _is_block(value: Value) -> bool:
    if not isinstance(value, str) or not value.endswith("\n") or value.endswith("\n\n"):
        return False
    lines = value[:-1].split("\n")
    return (
        len(lines) > 1
        and _SAFE_CHARS.fullmatch(value.replace("\n", "")) is not None
        and not lines[0].startswith((" ", "\t"))
        and all(line == line.rstrip() and line for line in lines)
    )


def _block_lines(text: str, indent: int) -> list[str]:
    return [" " * indent + line for line in text[:-1].split("\n")]


def format_key(key: str) -> str:
    """A mapping key, plain when safe."""
    return key if _plain_ok(key) else quote(key)


def format_scalar(value: Leaf) -> str:
    """A scalar that a yaml.v3 reader types back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, SopsTime):
        return value.text
    if isinstance(value, bytes):
        raise TypeError("binary values cannot be written to YAML")
    return value if _plain_ok(value) else quote(value)


def _format_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or _SAFE_CHARS.fullmatch(text) is None:
        return False
    if text[0] in "-?:,[]{}#&*!|>'\"%@`" or ": " in text or " #" in text or text.endswith(":"):
        return False
    try:
        if resolve_plain(text) != text:
            return False
    except UnsupportedScalar:
        return False
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == "tag:yaml.org,2002:str")


def quote(text: str) -> str:
    """A double-quoted YAML scalar (escapes for controls and non-printables)."""
    return '"' + "".join(_escape(char) for char in text) + '"'


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if _SAFE_CHARS.fullmatch(char):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
