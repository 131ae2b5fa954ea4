"""Multi-document YAML with the line and column of every node.

PyYAML's composer gives positioned nodes; one builder makes plain Python
data from them, and a `Positions` table maps each value's path (a tuple of keys and
list indexes) to where it stands in the file, so any later check can point at
the exact line and column. Duplicate mapping keys, which PyYAML silently
overwrites, are reported instead.

Speed: a position table costs as much to build as the data, and it is read
only when something is reported. So the data is built without one, and a
document's table is built on first use by parsing the same text again (once
per text, for all its documents).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import yaml

from aivault_ops.errors import AivaultError

JsonPath = tuple[str | int, ...]
Position = tuple[int, int]
_Built = TypeVar("_Built")

_MAX_DEPTH = 64
_MAX_NODES = 200_000
_JSON_SCALARS = (str, int, float, bool, type(None))
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"  # a `=` key, which PyYAML's merge step makes a string
_FLATTENED_KEY_TAGS = frozenset({_MERGE_TAG, _VALUE_TAG})
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_CONTAINER_TAGS = frozenset({_MAP_TAG, _SEQ_TAG})


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loading (libyaml's parser when present); timestamps stay strings."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        """PyYAML's resolution (this loader has no path resolvers), plain scalars cached."""
        if kind is yaml.ScalarNode:
            return _plain_scalar_tag(value) if implicit[0] else _STR_TAG
        return _SEQ_TAG if kind is yaml.SequenceNode else _MAP_TAG


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@lru_cache(maxsize=8192)
def _plain_scalar_tag(value: str) -> str:
    resolvers = _ManifestLoader.yaml_implicit_resolvers
    for tag, regexp in resolvers.get(value[:1], []) + resolvers.get(None, []):
        if regexp.match(value):
            return str(tag)
    return _STR_TAG


class YamlProblem(AivaultError):
    """A YAML error at a 1-based position (the loader reports it as `file:line:col: CODE`)."""

    def __init__(self, code: str, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.code, self.line, self.column = code, line, column


@dataclass(frozen=True)
class _Table:
    values: dict[JsonPath, Position]
    keys: dict[JsonPath, Position]


class Positions:
    """Where each value and each mapping key of one document stands (1-based)."""

    __slots__ = ("_index", "_source")

    def __init__(self, source: _SourceText | None = None, index: int = 0) -> None:
        self._source, self._index = source, index

    def of(self, path: JsonPath) -> Position:
        """Position of the value at `path`, or of its nearest existing ancestor."""
        values = self._table().values
        while path not in values and path:
            path = path[:-1]
        return values.get(path, (1, 1))

    def of_key(self, path: JsonPath) -> Position:
        """Position of the key that introduces `path` (falls back to the value)."""
        return self._table().keys.get(path) or self.of(path)

    def _table(self) -> _Table:
        return self._source.table(self._index) if self._source else _Table({}, {})


class _SourceText:
    """The text a document came from; its position tables, built on first use."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tables: list[_Table] | None = None

    def table(self, index: int) -> _Table:
        if self._tables is None:
            self._tables = _position_tables(self.text)
        return self._tables[index]


@dataclass(frozen=True)
class YamlDocument:
    """One YAML document: its data, positions, and the line it starts on."""

    data: Any
    positions: Positions
    start_line: int


def load_documents(text: str) -> Iterator[YamlDocument]:
    """Parse every document in `text`; raise `YamlProblem` on the first error."""
    source = _SourceText(text)
    for index, (node, data) in enumerate(_parse(text, _data)):
        yield YamlDocument(data, Positions(source, index), node.start_mark.line + 1)


def _position_tables(text: str) -> list[_Table]:
    """The table of each document, up to the first error (if a later document has one)."""
    tables: list[_Table] = []
    with contextlib.suppress(YamlProblem):
        tables.extend(table for _, table in _parse(text, _table))
    return tables


def _data(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return _Builder(loader, None).build(node, (), 0)


def _table(loader: yaml.SafeLoader, node: yaml.Node) -> _Table:
    table = _Table({}, {})
    _Builder(loader, table).build(node, (), 0)
    return table


def _parse(
    text: str, build: Callable[[yaml.SafeLoader, yaml.Node], _Built]
) -> Iterator[tuple[yaml.Node, _Built]]:
    """Each document's root node and what `build` makes of it; YAML errors become problems."""
    loader = _ManifestLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            yield node, build(loader, node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem("E-YAML-SYNTAX", _describe(error), line, column) from None
    except yaml.YAMLError as error:
        raise YamlProblem("E-YAML-SYNTAX", str(error).splitlines()[0], 1, 1) from None
    finally:
        loader.dispose()


def _describe(error: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (error.context, error.problem) if part]
    return "invalid YAML: " + ", ".join(parts) if parts else "invalid YAML"


class _Builder:
    """Plain data from a node tree; with a `table`, also where every value and key stands.

    Guards against alias bombs and recursion (bounded depth and node count)
    and refuses what JSON cannot hold. Without a table no path is built.
    """

    def __init__(self, loader: yaml.SafeLoader, table: _Table | None) -> None:
        self.loader = loader
        self.table = table
        self.count = 0

    def build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        """The value of `node`, which stands at `path` (only read with a table)."""
        self.count += 1
        if depth > _MAX_DEPTH or self.count > _MAX_NODES:
            raise _too_large(node)
        if self.table is not None:
            self.table.values[path] = _start(node)
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR_TAG else _scalar(self.loader, node)
        if node.tag not in _CONTAINER_TAGS:
            raise _unsupported_tag(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if self.table is None:
            return [self.build(item, path, depth + 1) for item in node.value]
        return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[Any, Any]:
        if _has_flattened_keys(node):
            return self._merged_mapping(node, path, depth)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _key(self.loader, key_node)
            if key in result:
                raise _duplicate(key, key_node)
            result[key] = self.build(value_node, self._key_path(path, key, key_node), depth + 1)
        return result

    def _merged_mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[Any, Any]:
        """A mapping with `<<` merges (or `=` keys): keys written here override merged
        ones, but not each other."""
        merged = _merge(self.loader, node)
        result: dict[Any, Any] = {}
        written: set[Any] = set()
        for key_node, value_node in node.value:
            key = _key(self.loader, key_node)
            if id(key_node) not in merged:
                _refuse_duplicate(key, key_node, written)
            result[key] = self.build(value_node, self._key_path(path, key, key_node), depth + 1)
        return result

    def _key_path(self, path: JsonPath, key: Any, key_node: yaml.Node) -> JsonPath:
        """The path of the value under `key` (with a table; its key's position noted)."""
        if self.table is None:
            return path
        child = (*path, key if isinstance(key, str) else str(key))
        self.table.keys[child] = _start(key_node)
        return child


def _has_flattened_keys(node: yaml.MappingNode) -> bool:
    for key, _ in node.value:  # noqa: SIM110 - twice as fast as any() over a generator
        if key.tag in _FLATTENED_KEY_TAGS:
            return True
    return False


def _merge(loader: yaml.SafeLoader, node: yaml.MappingNode) -> frozenset[int]:
    """Apply `<<` merges (merged pairs first, so keys written here override them) and
    return the ids of the merged key nodes."""
    written = {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
    loader.flatten_mapping(node)
    return frozenset(id(key) for key, _ in node.value if id(key) not in written)


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlProblem("E-YAML-TYPE", "mapping keys must be scalars", *_start(node))
    return node.value if node.tag == _STR_TAG else _scalar(loader, node)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """A non-string scalar, constructed by the safe constructor and kept only if JSON."""
    try:
        value = loader.construct_object(node, deep=True)
    except Exception:  # `!!int ten`, `!!bool maybe`, a 5,000-digit int, `!vault`
        raise YamlProblem(
            "E-YAML-TYPE", f"invalid value for tag {node.tag}", *_start(node)
        ) from None
    if not isinstance(value, _JSON_SCALARS):
        raise YamlProblem("E-YAML-TYPE", f"unsupported YAML value of tag {node.tag}", *_start(node))
    return value


def _refuse_duplicate(key: Any, key_node: yaml.Node, seen: set[Any]) -> None:
    """PyYAML silently keeps the last of two equal keys; a policy must not be ambiguous."""
    if key in seen:
        raise _duplicate(key, key_node)
    seen.add(key)


def _duplicate(key: Any, key_node: yaml.Node) -> YamlProblem:
    return YamlProblem("E-YAML-DUPLICATE-KEY", f"duplicate key {key!r}", *_start(key_node))


def _too_large(node: yaml.Node) -> YamlProblem:
    return YamlProblem("E-YAML-SYNTAX", "YAML nested too deeply or too large", *_start(node))


def _unsupported_tag(node: yaml.Node) -> YamlProblem:
    return YamlProblem("E-YAML-TYPE", f"unsupported YAML tag {node.tag}", *_start(node))


def _start(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1
