"""The builder without a position table agrees with itself with one, on every text.

`load_documents` builds data without a table and builds the position table
later, by parsing again. Both walks must accept and refuse the same texts,
with the same data and the same problem at the same place.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aivault_ops.manifests import yaml_positions
from aivault_ops.manifests.yaml_positions import YamlProblem, load_documents

_FRAGMENTS = st.sampled_from(
    [
        "---\n",
        "- ",
        ": ",
        "  ",
        "\n",
        "{",
        "}",
        "[",
        "]",
        ", ",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "<<: *a\n",
        "<<: [*a, *b]\n",
        "<<: 1\n",
        "=",
        "= ",
        "? ",
        "!!int ",
        "!!str ",
        "!!map ",
        "!!seq ",
        "!!set ",
        "!vault ",
        "x",
        "1",
        "true",
        "null",
        "~",
        "2024-01-02",
        "'q'",
        "a: ",
        "b: ",
        "x: 1\n",
        "x: 2\n",
    ]
)
TEXTS = st.lists(_FRAGMENTS, max_size=30).map("".join)


def _outcome(text: str, build: Any) -> Any:
    try:
        return [data for _, data in yaml_positions._parse(text, build)]
    except YamlProblem as problem:
        return (problem.code, problem.message, problem.line, problem.column)


def _positioned(loader: Any, node: Any) -> Any:
    table = yaml_positions._Table({}, {})
    return yaml_positions._Builder(loader, table).build(node, (), 0)


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(TEXTS)
def test_with_and_without_a_table_the_builder_agrees(text: str) -> None:
    assert _outcome(text, yaml_positions._data) == _outcome(text, _positioned)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=: 1\n", {"=": 1}),
        ("a: &a {x: 1}\nb:\n  <<: *a\n  =: 2\n", {"a": {"x": 1}, "b": {"x": 1, "=": 2}}),
        ("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n", None),
    ],
)
def test_merge_and_value_keys_build_like_pyyaml(text: str, expected: Any) -> None:
    (document,) = load_documents(text)
    if expected is None:
        assert document.data["c"] == {"x": 1, "y": 2}
    else:
        assert document.data == expected


def test_a_value_tagged_scalar_that_is_not_a_key_is_refused() -> None:
    with pytest.raises(YamlProblem) as caught:
        list(load_documents("a: =\n"))
    assert (caught.value.code, caught.value.line, caught.value.column) == ("E-YAML-TYPE", 1, 4)


def test_a_bad_merge_is_a_syntax_error_with_its_position() -> None:
    with pytest.raises(YamlProblem) as caught:
        list(load_documents("a:\n  <<: 1\n"))
    problem = caught.value
    assert (problem.code, problem.line, problem.column) == ("E-YAML-SYNTAX", 2, 7)
    assert problem.message == (
        "invalid YAML: while constructing a mapping, expected a mapping or list of mappings"
        " for merging, but found scalar"
    )


def test_positions_are_read_from_the_text_once_for_all_its_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = yaml_positions._position_tables

    def counting(text: str) -> Any:
        calls.append(text)
        return original(text)

    monkeypatch.setattr(yaml_positions, "_position_tables", counting)
    text = "a: 1\n---\nb:\n  c: 2\n"
    first, second = load_documents(text)
    assert calls == []
    assert second.positions.of(("b", "c")) == (4, 6)
    assert first.positions.of_key(("a",)) == (1, 1)
    assert calls == [text]


def test_positions_of_earlier_documents_survive_a_later_error() -> None:
    documents = load_documents("a: 1\n---\nb: [\n")
    first = next(documents)
    with pytest.raises(YamlProblem):
        next(documents)
    assert first.positions.of(("a",)) == (1, 4)
