"""libyaml reads plain SOPS YAML exactly as PyYAML's Python parser does, or not at all."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sops_helpers import VECTORS

from aivault_ops.sops import yaml_read
from aivault_ops.sops.tree import Comment, Entry, TreeList, TreeMap, Value

SEEDS = sorted(path.read_text() for path in VECTORS.glob("*.sops.yaml"))
PIECES = (
    " ", "\n", "\t", ":", ": ", "- ", "[", "]", "{", "}", ",", "'", '"', "!", "!!str ", "&a ",
    "*a", "?", "|", ">", "%", "@", "`", "\\", "\r\n", "\x85", "é", "\u2028", "---\n", "~",
    "null", "0x1F", "1e3", "yes", "2001-12-14", "# c\n", " #c", "a#b", "<<: ", "ENC[x]",
)  # fmt: skip


def _uncommented(value: Value) -> Value:
    if isinstance(value, TreeMap):
        return TreeMap([Entry(e.key, _uncommented(e.value)) for e in value.entries()])
    if isinstance(value, TreeList):
        return TreeList([_uncommented(i) for i in value.items if not isinstance(i, Comment)])
    return value


def _read(loader: type, text: str) -> tuple[Any, ...]:
    try:
        parsed = yaml_read._read(loader(text), text)
    except yaml_read._REFUSALS as error:
        return ("refused", type(error).__name__)
    documents = [_uncommented(document) for document in parsed.documents]
    return ("read", documents, parsed.metadata, parsed.positions)


def test_libyaml_is_available() -> None:
    """Without it every SOPS read silently takes the slow Python parser."""
    assert yaml_read._NO_COMMENTS_LOADER is not yaml_read._Loader


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.floats(0, 1), st.sampled_from(PIECES), st.booleans()), max_size=4),
    st.booleans(),
)
def test_libyaml_reads_what_it_accepts_as_python_does(
    seed: str, edits: list[tuple[float, str, bool]], keep_comments: bool
) -> None:
    text = seed
    for where, piece, replace in edits:
        at = int(where * len(text))
        text = text[:at] + piece + text[at + (1 if replace else 0) :]
    if not yaml_read.plain_enough_for_libyaml(text, keep_comments=keep_comments):
        return
    fast = _read(yaml_read._NO_COMMENTS_LOADER, text)
    if fast[0] == "read":
        assert fast == _read(yaml_read._Loader, text)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("KEY: ENC[AES256_GCM,data:eA==,iv:aQ==,tag:dA==,type:str]\nsops:\n    version: 3\n", True),
        ("a: b # comment\n", False),
        ("a: [b, c]\n", False),
        ("a:\n  - {b: c}\n", False),
        ("a: b\tc\n", False),
        ("a: b?\n", False),
        ("a: !\n", False),
        ("a: &x b\nc: *x\n", False),
        ("%YAML 1.1\n---\na: b\n", False),
    ],
)
def test_which_texts_libyaml_reads(text: str, plain: bool) -> None:
    assert yaml_read.plain_enough_for_libyaml(text) is plain


def test_refusals_are_the_python_parsers() -> None:
    with pytest.raises(yaml_read.yaml.MarkedYAMLError) as caught:
        yaml_read.parse_yaml("a: b\n c: d\n")
    assert caught.value.problem == "mapping values are not allowed here"


def test_deep_nesting_is_a_recursion_error_not_a_crash() -> None:
    """libyaml's own composer recurses in C; the Python composer on top of it does not."""
    code = (
        "from aivault_ops.sops import yaml_read\n"
        "try:\n"
        "    yaml_read.parse_yaml('- ' * 200000 + 'x')\n"
        "except RecursionError:\n"
        "    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "refused\n")
