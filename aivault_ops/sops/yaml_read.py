"""Read YAML into trees: yaml.v3 typing, comments kept, positions of every leaf.

PyYAML supplies the scanner, parser and composer (nodes carry positions); a
scanner hook records comments, which are then attached to the key or list
item that follows them (or, on the same line, precedes them).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from aivault_ops.sops.tree import Comment, Entry, Leaf, TreeList, TreeMap, Value
from aivault_ops.sops.yaml_resolve import UnsupportedScalar, resolve_plain

__all__ = ["ParsedYaml", "UnsupportedScalar", "YamlStructureError", "parse_yaml", "scalar_value"]

_PLAIN = "!aivault/plain"
_STR = "tag:yaml.org,2002:str"
_BREAKS = "\0\r\n\x85\u2028\u2029"
Position = tuple[int, int]
PathKey = tuple[str | int, ...]


class YamlStructureError(ValueError):
    """The YAML is valid but not something sops can store."""


@dataclass(frozen=True)
class RawComment:
    line: int
    column: int
    text: str


class _CommentScanner(Scanner):
    comments: list[RawComment]

    def scan_to_next_token(self) -> None:
        """PyYAML's version, but comments are recorded instead of skipped."""
        this: Any = self  # the Reader half of the loader supplies peek/forward
        if this.index == 0 and this.peek() == "\ufeff":
            this.forward()
        found = False
        while not found:
            while this.peek() == " ":
                this.forward()
            if this.peek() == "#":
                self._record_comment(this)
            if this.scan_line_break():
                if not self.flow_level:
                    self.allow_simple_key = True
            else:
                found = True

    def _record_comment(self, this: Any) -> None:
        mark = this.get_mark()
        chars = []
        while this.peek() not in _BREAKS:
            chars.append(this.peek())
            this.forward()
        self.comments.append(RawComment(mark.line, mark.column, "".join(chars)[1:]))


class _Resolver(BaseResolver):
    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        resolved: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return resolved


class _Loader(Reader, _CommentScanner, Parser, Composer, _Resolver):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)
        self.comments = []


try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _NO_COMMENTS_LOADER: type = _Loader
else:

    class _FastLoader(Composer, CParser, _Resolver):
        """libyaml's scanner and parser (C) under PyYAML's composer (Python), for texts
        whose comments need not be kept.

        The composer is PyYAML's Python one, not libyaml's: that one recurses in C,
        so a deeply nested document would overflow the C stack instead of raising
        `RecursionError`.
        """

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            _Resolver.__init__(self)
            self.comments: list[RawComment] = []

    _NO_COMMENTS_LOADER = _FastLoader


@dataclass
class _Anchor:
    position: Position
    container: TreeMap | TreeList
    index: int
    indent: int


@dataclass
class ParsedYaml:
    """Documents (top-level `sops` removed), its raw metadata, and leaf positions."""

    documents: list[TreeMap]
    metadata: list[object]
    positions: dict[PathKey, Position] = field(default_factory=dict)


def scalar_value(node: yaml.ScalarNode) -> Leaf:
    """A scalar node's value with yaml.v3 typing (explicit tags respected)."""
    if node.tag == _PLAIN:
        return resolve_plain(node.value)
    if node.tag == "tag:yaml.org,2002:binary":
        try:
            return base64.b64decode("".join(node.value.split())).decode("utf-8")
        except (binascii.Error, ValueError) as error:  # non-ASCII text is a ValueError
            raise YamlStructureError("invalid !!binary scalar") from error
    if node.tag == _STR or node.style:  # plain: None from PyYAML's scanner, "" from libyaml's
        return str(node.value)
    return resolve_plain(node.value)


class _Builder:
    def __init__(
        self, doc_index: int, positions: dict[PathKey, Position], lines: list[str]
    ) -> None:
        self.doc_index = doc_index
        self.lines = lines
        self.positions = positions
        self.anchors: list[_Anchor] = []
        self.metadata: object = None

    def root(self, node: yaml.Node) -> TreeMap:
        if not isinstance(node, yaml.MappingNode):
            raise YamlStructureError("the top level of a document must be a mapping")
        return self._map(node, (self.doc_index,), top=True)

    def _node(self, node: yaml.Node, where: PathKey) -> Value:
        if isinstance(node, yaml.MappingNode):
            return self._map(node, where)
        if isinstance(node, yaml.SequenceNode):
            result = TreeList()
            for index, item in enumerate(node.value):
                self._anchor(item, result, dash=True)
                result.items.append(self._node(item, (*where, index)))
            return result
        self.positions[where] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if not isinstance(node, yaml.ScalarNode):
            raise YamlStructureError("unexpected YAML node")
        try:
            return scalar_value(node)
        except UnsupportedScalar as error:
            raise YamlStructureError(f"line {node.start_mark.line + 1}: {error}") from error

    def _map(self, node: yaml.MappingNode, where: PathKey, *, top: bool = False) -> TreeMap:
        result = TreeMap()
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = _key(key_node)
            if key in seen:
                raise YamlStructureError(f"line {key_node.start_mark.line + 1}: duplicate key")
            seen.add(key)
            self._anchor(key_node, result)
            if top and key == "sops":
                self.metadata = _raw(value_node)
                continue
            result.items.append(Entry(key, self._node(value_node, (*where, key))))
        return result

    def _anchor(
        self, node: yaml.Node, container: TreeMap | TreeList, *, dash: bool = False
    ) -> None:
        line, column = node.start_mark.line, node.start_mark.column
        if dash and line < len(self.lines):
            column = self._dash_column(line, column)
        self.anchors.append(
            _Anchor((line, node.start_mark.column), container, len(container.items), column)
        )

    def _dash_column(self, line: int, column: int) -> int:
        """The column of the `-` that starts a list item whose node is at (line, column):
        on the node's line, or on an earlier one when only a comment followed the dash
        (`- # note` and the item below it)."""
        before = self.lines[line][:column].rstrip(" ")
        if before.endswith("-"):
            return len(before) - 1
        if before:
            return column
        for earlier in reversed(self.lines[:line]):
            text = earlier.split(" #", 1)[0].rstrip(" ")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            dashes = [at for at, char in enumerate(text[:column]) if char == "-"]
            return dashes[-1] if text.endswith("-") and dashes else column
        return column


def _key(node: yaml.Node) -> str:
    value = scalar_value(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, str):
        kind = type(value).__name__ if isinstance(node, yaml.ScalarNode) else "collection"
        raise YamlStructureError(
            f"line {node.start_mark.line + 1}: keys must be strings (found a {kind} key)"
        )
    return value


def _raw(node: yaml.Node) -> object:
    """The metadata subtree as plain data, scalars kept as their text."""
    if isinstance(node, yaml.MappingNode):
        return {str(key.value): _raw(value) for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_raw(item) for item in node.value]
    if node.tag == _PLAIN and node.value in ("", "~", "null", "Null", "NULL"):
        return None
    return str(node.value)


def _attach(
    comments: list[RawComment], anchors: list[_Anchor], root: TreeMap, lines: list[str]
) -> None:
    plan: dict[int, tuple[TreeMap | TreeList, dict[int, list[Comment]]]] = {}
    positions = [anchor.position for anchor in anchors]
    for comment in comments:
        opens_item = _after_bare_dash(lines[comment.line][: comment.column])
        container, index = _target(comment, anchors, positions, root, opens_item=opens_item)
        slots = plan.setdefault(id(container), (container, {}))[1]
        slots.setdefault(index, []).append(Comment(comment.text))
    for container, slots in plan.values():
        _insert(container, slots)


def _after_bare_dash(before: str) -> bool:
    """Whether a comment's line holds only list dashes before it (`- # note`, `- - # note`)."""
    return "-" in before and not before.strip(" -")


def _target(
    comment: RawComment,
    anchors: list[_Anchor],
    positions: list[Position],
    root: TreeMap,
    *,
    opens_item: bool,
) -> tuple[TreeMap | TreeList, int]:
    """Where a comment belongs: a line comment goes before the entry it trails, or
    before the item that the bare dash it follows opens (`opens_item`); a full-line
    comment before the next entry, unless it is indented deeper than that entry, in
    which case it closes the earlier container whose entries share its indent."""
    at = bisect.bisect_left(positions, (comment.line, comment.column))
    if at > 0 and positions[at - 1][0] == comment.line:
        anchor = anchors[at - 1]
        return anchor.container, anchor.index
    if at < len(anchors) and (opens_item or anchors[at].indent >= comment.column):
        return anchors[at].container, anchors[at].index
    for anchor in reversed(anchors[:at]):
        if anchor.indent == comment.column:
            return anchor.container, len(anchor.container.items)
    if at < len(anchors):
        return anchors[at].container, anchors[at].index
    return root, len(root.items)


def _insert(container: TreeMap | TreeList, slots: dict[int, list[Comment]]) -> None:
    old = list(container.items)
    merged: list[object] = []
    for index, item in enumerate(old):
        merged.extend(slots.get(index, []))
        merged.append(item)
    merged.extend(slots.get(len(old), []))
    container.items = merged  # type: ignore[assignment]


_REFUSALS = (
    yaml.YAMLError, YamlStructureError, UnsupportedScalar, RecursionError,
    ValueError, KeyError, AttributeError,
)  # fmt: skip
_NOT_PLAIN = re.compile(r"[\t?!&*%]")
_FLOW_START = re.compile(r"(?:^|\s)[\[{]")


def plain_enough_for_libyaml(text: str, *, keep_comments: bool = True) -> bool:
    """Whether libyaml reads `text` as PyYAML's Python parser does.

    The two differ on comments (libyaml drops them, which only matters with
    `keep_comments`), tabs and `?` in plain scalars, flow collections
    (`[a, b]`, `{a: b}`) and empty tagged nodes, so texts with any of those,
    or with tags, anchors, aliases or directives at all, take the Python
    parser. Files sops writes have none of them: keys, `ENC[…]` values (that
    `[` is inside a plain scalar) and block-style metadata.
    """
    if keep_comments and "#" in text:
        return False
    return _NOT_PLAIN.search(text) is None and _FLOW_START.search(text) is None


def parse_yaml(text: str, *, keep_comments: bool = True) -> ParsedYaml:
    """Parse every document; YamlStructureError or yaml.YAMLError on bad input.

    Texts that are `plain_enough_for_libyaml` are read with libyaml's scanner
    and parser, many times faster than PyYAML's Python ones (`keep_comments=False`,
    for metadata reads, lets comments be dropped). Whatever libyaml refuses
    is read again with the Python parser, so every refusal and its message
    are the Python parser's.
    """
    if not plain_enough_for_libyaml(text, keep_comments=keep_comments):
        return _read(_Loader(text), text)
    try:
        return _read(_NO_COMMENTS_LOADER(text), text)
    except _REFUSALS:
        return _read(_Loader(text), text)


def _read(loader: Any, text: str) -> ParsedYaml:
    lines = text.split("\n")
    result = ParsedYaml([], [])
    try:
        seen = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            builder = _Builder(len(result.documents), result.positions, lines)
            document = builder.root(node)
            _attach(loader.comments[seen:], builder.anchors, document, lines)
            seen = len(loader.comments)
            result.documents.append(document)
            result.metadata.append(builder.metadata)
    finally:
        loader.dispose()
    if not result.documents:
        raise YamlStructureError("the file is empty; it must contain at least one document")
    return result
