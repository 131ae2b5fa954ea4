"""YAML with the 1-based line and column of every value and key."""

from __future__ import annotations

import pytest

from aivault_ops.errors import AivaultError
from aivault_ops.manifests.yaml_positions import Positions, YamlProblem, load_documents

MANIFEST = """\
# a comment first
apiVersion: aivault.dev/v1
kind: Capability
metadata:
  name: internal-api/users
spec:
  allow:
    methods: [GET, POST]
    pathPrefixes:
      - /v1/users
      - /v1/groups
"""


def _problem(text: str) -> YamlProblem:
    with pytest.raises(YamlProblem) as caught:
        list(load_documents(text))
    return caught.value


def test_data_is_plain_python() -> None:
    (document,) = load_documents(MANIFEST)
    assert document.data == {
        "apiVersion": "aivault.dev/v1",
        "kind": "Capability",
        "metadata": {"name": "internal-api/users"},
        "spec": {
            "allow": {"methods": ["GET", "POST"], "pathPrefixes": ["/v1/users", "/v1/groups"]}
        },
    }
    assert document.start_line == 2


def test_positions_of_values_and_keys() -> None:
    (document,) = load_documents(MANIFEST)
    positions = document.positions
    assert positions.of(()) == (2, 1)
    assert positions.of(("kind",)) == (3, 7)
    assert positions.of(("metadata", "name")) == (5, 9)
    assert positions.of(("spec", "allow", "methods", 1)) == (8, 20)
    assert positions.of(("spec", "allow", "pathPrefixes")) == (10, 7)
    assert positions.of(("spec", "allow", "pathPrefixes", 1)) == (11, 9)
    assert positions.of_key(("spec", "allow", "pathPrefixes")) == (9, 5)
    assert positions.of_key(("metadata", "name")) == (5, 3)


def test_missing_paths_fall_back_to_the_nearest_ancestor() -> None:
    (document,) = load_documents(MANIFEST)
    positions = document.positions
    assert positions.of(("spec", "allow", "hosts", 0)) == positions.of(("spec", "allow"))
    assert positions.of(("nope",)) == (2, 1)
    assert positions.of_key(("spec", "nope")) == positions.of(("spec",))
    assert Positions().of(("a", "b")) == (1, 1)


def test_several_documents_keep_their_own_lines() -> None:
    text = "a: 1\n---\n\n# two\nb:\n  c: 2\n---\n---\n- x\n"
    documents = list(load_documents(text))
    assert [d.data for d in documents] == [{"a": 1}, {"b": {"c": 2}}, None, ["x"]]
    assert [d.start_line for d in documents] == [1, 5, 8, 9]
    assert documents[1].positions.of(("b", "c")) == (6, 6)
    assert documents[3].positions.of((0,)) == (9, 3)


def test_empty_text_has_no_documents() -> None:
    assert list(load_documents("")) == []
    assert list(load_documents("# only a comment\n")) == []


def test_timestamps_stay_strings_and_scalars_keep_their_types() -> None:
    (document,) = load_documents(
        "when: 2024-01-02\nat: 2024-01-02T03:04:05Z\nn: 12\nf: 1.5\nb: true\nz: null\nbig: "
        + "9" * 40
        + "\n"
    )
    assert document.data == {
        "when": "2024-01-02",
        "at": "2024-01-02T03:04:05Z",
        "n": 12,
        "f": 1.5,
        "b": True,
        "z": None,
        "big": int("9" * 40),
    }


def test_anchors_aliases_and_merge_keys_are_resolved() -> None:
    (document,) = load_documents("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  z: 3\nlist: [*b]\n")
    assert document.data == {
        "base": {"x": 1, "y": 2},
        "other": {"x": 1, "y": 2, "z": 3},
        "list": [{"x": 1, "y": 2}],
    }
    assert document.positions.of_key(("other", "z")) == (4, 3)
    assert document.positions.of(("list", 0, "y")) == (1, 20)


def test_non_string_keys_are_indexed_by_their_text() -> None:
    (document,) = load_documents("2: two\ntrue: yeah\n")
    assert document.data == {2: "two", True: "yeah"}
    assert document.positions.of(("2",)) == (1, 4)
    assert document.positions.of_key(("True",)) == (2, 1)


def test_syntax_error_points_at_the_problem() -> None:
    problem = _problem("a: 1\nb: [1, 2\nc: 3\n")
    assert (problem.code, problem.line, problem.column) == ("E-YAML-SYNTAX", 3, 2)
    assert problem.message == (
        "invalid YAML: while parsing a flow sequence, did not find expected ',' or ']'"
    )


def test_a_yaml_problem_is_an_aivault_error_whose_diagnostics_are_its_message() -> None:
    problem = _problem("a: 1\nb: [1, 2\nc: 3\n")
    assert isinstance(problem, AivaultError)
    assert problem.diagnostics() == problem.message == str(problem)


def test_tabs_for_indentation_are_a_syntax_error() -> None:
    problem = _problem("a:\n\tb: 1\n")
    assert (problem.code, problem.line, problem.column) == ("E-YAML-SYNTAX", 2, 1)
    assert problem.message == (
        "invalid YAML: while scanning for the next token, found character that cannot start"
        " any token"
    )


def test_duplicate_key_points_at_the_second_key() -> None:
    problem = _problem("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert (problem.code, problem.message, problem.line, problem.column) == (
        "E-YAML-DUPLICATE-KEY",
        "duplicate key 'c'",
        4,
        3,
    )


def test_duplicate_key_through_a_merge_is_not_an_error() -> None:
    """An explicit key overrides a merged one (YAML merge semantics)."""
    (document,) = load_documents("b: &b {x: 1, y: 1}\nc:\n  <<: *b\n  x: 2\n")
    assert document.data["c"] == {"x": 2, "y": 1}
    assert document.positions.of(("c", "x")) == (4, 6)


def test_an_explicit_key_twice_next_to_a_merge_is_still_a_duplicate() -> None:
    problem = _problem("b: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n  x: 3\n")
    assert (problem.code, problem.message, problem.line, problem.column) == (
        "E-YAML-DUPLICATE-KEY",
        "duplicate key 'x'",
        5,
        3,
    )


def test_non_json_values_are_refused() -> None:
    problem = _problem("a: !!binary aGVsbG8=\n")
    assert (problem.code, problem.line, problem.column) == ("E-YAML-TYPE", 1, 4)
    assert problem.message == "unsupported YAML value of tag tag:yaml.org,2002:binary"


def test_complex_keys_are_refused() -> None:
    problem = _problem("? [a, b]\n: c\n")
    assert (problem.code, problem.message, problem.line, problem.column) == (
        "E-YAML-TYPE",
        "mapping keys must be scalars",
        1,
        3,
    )


def test_unknown_tags_are_refused() -> None:
    problem = _problem("a: !vault secret\n")
    assert (problem.code, problem.line, problem.column) == ("E-YAML-TYPE", 1, 4)
    assert problem.message == "invalid value for tag !vault"


def test_python_tags_are_never_constructed() -> None:
    problem = _problem("a: !!python/object/apply:os.system 'true'\n")
    assert (problem.code, problem.line, problem.column) == ("E-YAML-TYPE", 1, 4)
    assert (
        problem.message == "invalid value for tag tag:yaml.org,2002:python/object/apply:os.system"
    )


@pytest.mark.parametrize(
    "text",
    ["a: !!set {x, y}\n", "a: !!omap [{x: 1}]\n", "a: !!python/object/apply:os.system ['true']\n"],
)
def test_tags_on_collections_are_refused_like_tags_on_scalars(text: str) -> None:
    problem = _problem(text)
    assert (problem.code, problem.line, problem.column) == ("E-YAML-TYPE", 1, 4)


def test_deep_nesting_is_refused() -> None:
    problem = _problem("a: " + "[" * 70 + "]" * 70 + "\n")
    assert (problem.code, problem.message) == (
        "E-YAML-SYNTAX",
        "YAML nested too deeply or too large",
    )


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 9):
        name, previous = chr(ord("a") + index), chr(ord("a") + index - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    problem = _problem("\n".join(lines) + "\n")
    assert (problem.code, problem.message) == (
        "E-YAML-SYNTAX",
        "YAML nested too deeply or too large",
    )


def test_recursive_alias_is_refused() -> None:
    problem = _problem("a: &a [*a]\n")
    assert problem.code == "E-YAML-SYNTAX"


def test_control_characters_are_a_syntax_error() -> None:
    problem = _problem("a: \x00\n")
    assert (problem.code, problem.message, problem.line, problem.column) == (
        "E-YAML-SYNTAX",
        "unacceptable character #x0000: control characters are not allowed",
        1,
        1,
    )
