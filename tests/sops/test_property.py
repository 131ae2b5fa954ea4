"""Property: random documents survive our encrypt → `sops -d` and `sops -e` → our decrypt."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sops_helpers import AgeKey, identities_for, make_age_key, run_sops

from aivault_ops.sops import EncryptionRule, KeyPlan, decrypt_bytes
from aivault_ops.sops.json_store import dump_json
from aivault_ops.sops.sopsfile import encrypt_new
from aivault_ops.sops.stores import Format, parse_plaintext
from aivault_ops.sops.tree import Comment, Entry, TreeList, TreeMap, Value, to_python
from aivault_ops.sops.yaml_write import dump_documents

_TEXT = st.characters(blacklist_categories=["Cs"])
_COMMENT = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=12)
_KEYS = st.text(_TEXT, min_size=1, max_size=8).filter(lambda key: key != "sops")
_SCALARS = st.one_of(
    st.text(_TEXT, max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


def _with_comments(items: list[Any], comments: list[str], cls: type) -> Any:
    merged = list(items)
    for offset, text in enumerate(comments):
        merged.insert(min(offset * 2, len(merged)), Comment(" " + text))
    return cls(merged)


def _maps(children: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    return st.builds(
        lambda pairs, comments: _with_comments(
            [Entry(k, v) for k, v in pairs.items()], comments, TreeMap
        ),
        st.dictionaries(_KEYS, children, min_size=1, max_size=4),
        st.lists(_COMMENT, max_size=2),
    )


def _lists(children: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    return st.builds(
        lambda items, comments: _with_comments(items, comments, TreeList),
        st.lists(children, min_size=1, max_size=4),
        st.lists(_COMMENT, max_size=2),
    )


_VALUES = st.recursive(
    _SCALARS, lambda children: st.one_of(_maps(children), _lists(children)), max_leaves=12
)
DOCUMENTS = st.builds(
    lambda pairs, comments: _with_comments(
        [Entry(k, v) for k, v in pairs.items()], comments, TreeMap
    ),
    st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=5),
    st.lists(_COMMENT, max_size=2),
)


def normalize(value: object) -> object:
    """Numbers by value (sops prints 2.0 as 2), bools distinct from numbers."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        assert not (isinstance(value, float) and math.isnan(value))
        return ("number", float(value))
    return value


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return make_age_key(tmp_path_factory.mktemp("keys"))


def _plaintext(format_: Format, document: TreeMap) -> tuple[bytes, object]:
    data = (dump_documents([document]) if format_ == "yaml" else dump_json(document)).encode()
    documents = parse_plaintext(data, format_, "<generated>")
    expected = normalize([to_python(doc) for doc in documents])
    assert format_ == "json" or expected == normalize([to_python(document)])
    return data, expected


def _our_encrypt_then_sops_decrypts(format_: Format, document: TreeMap, key: AgeKey) -> None:
    data, expected = _plaintext(format_, document)
    documents = parse_plaintext(data, format_, "<generated>")
    encrypted = encrypt_new(
        documents, format_=format_, plan=KeyPlan(((key.recipient,),)), rule=EncryptionRule()
    )
    with tempfile.TemporaryDirectory() as work:
        name = f"x.{format_}"
        (Path(work) / name).write_bytes(encrypted)
        output = run_sops(["-d", name], cwd=Path(work), keys=[key]).stdout
    assert (
        normalize([to_python(doc) for doc in parse_plaintext(output, format_, "<sops -d>")])
        == expected
    )


def _sops_encrypts_then_we_decrypt(format_: Format, document: TreeMap, key: AgeKey) -> None:
    data, expected = _plaintext(format_, document)
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "plain").write_bytes(data)
        args = [
            "--config",
            "/dev/null",
            "-e",
            "--age",
            key.recipient,
            "--filename-override",
            f"x.{format_}",
        ]
        encrypted = run_sops([*args, "plain"], cwd=Path(work)).stdout
    decrypted = decrypt_bytes(
        encrypted, format=format_, identities=identities_for(key), source_name="x"
    )
    assert normalize([to_python(doc) for doc in decrypted.documents]) == expected


FAST = settings(
    max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SLOW = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@FAST
@given(document=DOCUMENTS)
def test_yaml_our_encrypt_sops_decrypt(document: TreeMap, key: AgeKey) -> None:
    _our_encrypt_then_sops_decrypts("yaml", document, key)


@FAST
@given(document=DOCUMENTS)
def test_yaml_sops_encrypt_our_decrypt(document: TreeMap, key: AgeKey) -> None:
    _sops_encrypts_then_we_decrypt("yaml", document, key)


@settings(FAST, max_examples=6)
@given(document=DOCUMENTS)
def test_json_both_ways(document: TreeMap, key: AgeKey) -> None:
    _our_encrypt_then_sops_decrypts("json", document, key)
    _sops_encrypts_then_we_decrypt("json", document, key)


@pytest.mark.slow
@SLOW
@given(document=DOCUMENTS)
def test_yaml_both_ways_many_examples(document: TreeMap, key: AgeKey) -> None:
    _our_encrypt_then_sops_decrypts("yaml", document, key)
    _sops_encrypts_then_we_decrypt("yaml", document, key)


def _comments(value: object) -> list[str]:
    if isinstance(value, TreeMap):
        return [
            t
            for item in value.items
            for t in (_comments(item.value) if isinstance(item, Entry) else [item.text])
        ]
    if isinstance(value, TreeList):
        return [
            t
            for item in value.items
            for t in (_comments(item) if not isinstance(item, Comment) else [item.text])
        ]
    return []


@settings(max_examples=60, deadline=None, database=None)
@given(document=DOCUMENTS)
@example(  # a list item whose `-` is followed only by a comment (was: "# c" moved to "00")
    document=TreeMap(
        [
            Entry("00", TreeMap([Entry("0", "v")])),
            Entry(
                "0",
                TreeList(
                    [
                        Comment(" a"),
                        TreeList([TreeMap([Comment(" b"), Entry("%", "w")])]),
                        Comment(" c"),
                    ]
                ),
            ),
        ]
    )
)
@example(  # a comment after a bare dash two lists deep (was: it closed the map above)
    document=TreeMap(
        [
            Entry(
                "0",
                TreeList(
                    [
                        TreeMap([Entry("ç", "v")]),
                        TreeList([Comment(" c1"), TreeList([Comment(" c2"), "w"])]),
                    ]
                ),
            )
        ]
    )
)
def test_our_own_round_trip_keeps_values_and_comments(document: TreeMap, key: AgeKey) -> None:
    data, expected = _plaintext("yaml", document)
    plain = parse_plaintext(data, "yaml", "<generated>")
    encrypted = encrypt_new(
        plain, format_="yaml", plan=KeyPlan(((key.recipient,),)), rule=EncryptionRule()
    )
    decrypted = decrypt_bytes(
        encrypted, format="yaml", identities=identities_for(key), source_name="x"
    )
    assert normalize([to_python(doc) for doc in decrypted.documents]) == expected
    assert _comments(decrypted.documents[0]) == _comments(document)
