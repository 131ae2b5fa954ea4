""" "Did you mean" for names that match nothing: the nearest known names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

_CUTOFF = 0.8


def close_names(name: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """Up to `limit` known names most like `name`, best first.

    Close means a difflib ratio of at least 0.8, or a single typo (one
    character added, dropped, changed, or two swapped). A shared `provider/`
    prefix is not counted as likeness: `github/wiki` is not close to
    `github/gists` just because both start with `github/`.
    """
    scored = []
    for candidate in sorted(set(known) - {name}):
        left, right = _unshared(name, candidate)
        ratio = difflib.SequenceMatcher(None, left, right).ratio()
        if _one_typo(left, right):
            ratio = max(ratio, _CUTOFF)
        if ratio >= _CUTOFF:
            scored.append((-ratio, candidate))
    return [candidate for _, candidate in sorted(scored)[:limit]]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'a' or 'b'?)`, or "" when nothing is close."""
    matches = [f"'{match}'" for match in close_names(name, known)]
    if not matches:
        return ""
    listed = matches[0] if len(matches) == 1 else ", ".join(matches[:-1]) + " or " + matches[-1]
    return f" (did you mean {listed}?)"


def _unshared(name: str, candidate: str) -> tuple[str, str]:
    prefix, slash, rest = name.partition("/")
    if slash and candidate.startswith(prefix + slash):
        return rest, candidate[len(prefix) + 1 :]
    return name, candidate


def _one_typo(left: str, right: str) -> bool:
    """Edit distance 1, counting a swap of two neighbours as one edit."""
    if left == right or abs(len(left) - len(right)) > 1:
        return False
    start = 0
    while start < min(len(left), len(right)) and left[start] == right[start]:
        start += 1
    a, b = left[start:], right[start:]
    if len(a) == len(b):
        swapped = len(a) >= 2 and a[0] == b[1] and a[1] == b[0] and a[2:] == b[2:]
        return a[1:] == b[1:] or swapped
    return a[1:] == b if len(a) > len(b) else a == b[1:]
