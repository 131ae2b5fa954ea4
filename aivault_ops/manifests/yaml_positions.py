"""Multi-document YAML with the line and column of every node.

PyYAML's composer gives positioned nodes; we build plain Python data from
them and keep a `Positions` table from each value's path (a tuple of keys and
list indexes) to where it stands in the file, so any later check can point at
the exact line and column. Duplicate mapping keys, which PyYAML silently
overwrites, are reported instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

JsonPath = tuple[str | int, ...]

_MAX_DEPTH = 64
_MAX_NODES = 200_000
_JSON_SCALARS = (str, int, float, bool, type(None))
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_CONTAINER_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loading (libyaml's parser when present); timestamps stay strings."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class YamlProblem(Exception):
    """A YAML error at a 1-based position."""

    def __init__(self, code: str, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.code, self.message, self.line, self.column = code, message, line, column


@dataclass(frozen=True)
class Positions:
    """Where each value and each mapping key of one document stands (1-based)."""

    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: JsonPath) -> tuple[int, int]:
        """Position of the value at `path`, or of its nearest existing ancestor."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def of_key(self, path: JsonPath) -> tuple[int, int]:
        """Position of the key that introduces `path` (falls back to the value)."""
        return self.keys.get(path) or self.of(path)


@dataclass(frozen=True)
class YamlDocument:
    """One YAML document: its data, positions, and the line it starts on."""

    data: Any
    positions: Positions
    start_line: int


def load_documents(text: str) -> Iterator[YamlDocument]:
    """Parse every document in `text`; raise `YamlProblem` on the first error."""
    loader = _ManifestLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            positions = Positions()
            data = _Builder(loader, positions).build(node, (), 0)
            yield YamlDocument(data, positions, node.start_mark.line + 1)
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
    def __init__(self, loader: yaml.SafeLoader, positions: Positions) -> None:
        self.loader = loader
        self.positions = positions
        self.count = 0

    def build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        """Guards against alias bombs and recursion: bounded depth and node count."""
        self.count += 1
        if depth > _MAX_DEPTH or self.count > _MAX_NODES:
            raise YamlProblem("E-YAML-SYNTAX", "YAML nested too deeply or too large", *_start(node))
        self.positions.values[path] = _start(node)
        if node.tag not in _CONTAINER_TAGS and not isinstance(node, yaml.ScalarNode):
            raise YamlProblem("E-YAML-TYPE", f"unsupported YAML tag {node.tag}", *_start(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # the common case, without the constructor's bookkeeping
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception:  # `!!int ten`, `!!bool maybe`, a 5,000-digit int, `!vault`
            raise YamlProblem(
                "E-YAML-TYPE", f"invalid value for tag {node.tag}", *_start(node)
            ) from None
        if not isinstance(value, _JSON_SCALARS):
            raise YamlProblem(
                "E-YAML-TYPE", f"unsupported YAML value of tag {node.tag}", *_start(node)
            )
        return value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[Any, Any]:
        explicit = {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
        self.loader.flatten_mapping(node)  # merged (<<) pairs first; explicit keys override
        result: dict[Any, Any] = {}
        explicit_seen: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem("E-YAML-TYPE", "mapping keys must be scalars", *_start(key_node))
            key = self._scalar(key_node)
            if id(key_node) in explicit:
                _refuse_duplicate(key, key_node, explicit_seen)
            child = (*path, key if isinstance(key, str) else str(key))
            self.positions.keys[child] = _start(key_node)
            result[key] = self.build(value_node, child, depth + 1)
        return result


def _refuse_duplicate(key: Any, key_node: yaml.Node, seen: set[Any]) -> None:
    """PyYAML silently keeps the last of two equal keys; a policy must not be ambiguous."""
    if key in seen:
        raise YamlProblem("E-YAML-DUPLICATE-KEY", f"duplicate key {key!r}", *_start(key_node))
    seen.add(key)


def _start(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
