"""Canonical JSON writing and strict reading."""

from __future__ import annotations

import pytest

from aivault_ops.canonical_json import JsonError, canonical_json, loads_strict


def test_sorted_compact_utf8() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "\u2028"}}
    assert canonical_json(value) == '{"a":{"y":"\u2028","z":"é"},"b":[1,2.5,null,true]}'.encode()


def test_equal_data_gives_equal_bytes() -> None:
    assert canonical_json({"x": 1, "y": 2}) == canonical_json({"y": 2, "x": 1})


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        {"a": -float("inf")},
        {1: "x"},
        [{2: 3}],
        {"a": {1, 2}},
        {"a": {"b": {3: "deep"}}},
        [[{4: "in a list in a list"}]],
        {"a": ({5: "in a tuple"},)},
    ],
)
def test_unencodable_values_are_refused(value: object) -> None:
    with pytest.raises(JsonError):
        canonical_json(value)


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(JsonError):
        canonical_json("\ud800")


def test_strict_reading_round_trips() -> None:
    value = {"a": [1, {"b": None}], "c": "é"}
    assert loads_strict(canonical_json(value)) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1,"a":2}', "duplicate key 'a'"),
        (b'{"a":{"b":1,"b":1}}', "duplicate key 'b'"),
        (b"[NaN]", "NaN is not JSON"),
        (b"-Infinity", "-Infinity is not JSON"),
        (b"\xc3\x28", "not UTF-8: invalid continuation byte at byte 0"),
        (b"{", "Expecting property name enclosed in double quotes at line 1 column 2"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_ambiguous_or_broken_json_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(JsonError) as info:
        loads_strict(data)
    assert str(info.value) == message
