"""Consumer grants resolve exactly as `fnmatch.fnmatchcase` would, pattern by pattern."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aivault_ops.runtime.policy.consumers import granted_by

NAMES = sorted(
    {
        "openai/chat", "openai/models", "openai", "openai-admin/keys", "open/ai", "o",
        "api-1/cap-0", "api-10/cap-0", "api-1/cap-1", "a*b/c", "a?b/c", "a[b]/c", "x\ny",
    }
)  # fmt: skip


def fnmatch_grants(patterns: list[str], names: list[str]) -> frozenset[str]:
    return frozenset(name for name in names if any(fnmatchcase(name, p) for p in patterns))


@pytest.mark.parametrize(
    "patterns",
    [
        ["openai/*"], ["openai*"], ["openai"], ["*"], [""], ["api-1/*"], ["api-1*"],
        ["a*b/c"], ["a[*]b/c"], ["a?b/c"], ["a[b]/c"], ["[!o]*"], ["*/cap-?"], ["x*"],
        ["nothing", "openai/chat"], ["openai/chat", "openai/*"],
    ],
)  # fmt: skip
def test_named_patterns(patterns: list[str]) -> None:
    assert granted_by(patterns, NAMES) == fnmatch_grants(patterns, NAMES)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="ab/-*?[]!\\\n", max_size=5), max_size=3),
    st.lists(st.text(alphabet="ab/-*[]\n", max_size=5), max_size=30),
)
def test_random_patterns_and_names(patterns: list[str], names: list[str]) -> None:
    ordered = sorted(set(names))
    assert granted_by(patterns, ordered) == fnmatch_grants(patterns, ordered)
