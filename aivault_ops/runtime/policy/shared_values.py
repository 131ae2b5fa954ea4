"""One object per distinct value in a loaded policy, none of them the JSON decoder's.

A bundle with 10,000 capabilities repeats the same few method sets, path
prefixes, hosts, limits and header rules thousands of times; `ValueTable`
keeps one object per distinct value for the whole policy build.

It also copies every scalar it keeps (`text`, `number`) instead of holding
on to the object `json.loads` made. CPython's small-object allocator returns
memory to the OS one 1 MiB arena at a time, and only when the arena is
entirely empty: a single capability name kept from the decoded `policy.json`
would pin the arena it sits in, and a name kept from every part of the
document pins all of it (about 14 MiB for 10,000 capabilities), long after
the decoded document itself was dropped. With copies, the decoded document
is freed whole when the build ends.

A table lives for one build only, so nothing it holds outlives the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
H = TypeVar("H", bound=Hashable)


def fresh_text(text: str) -> str:
    """An equal string that is a new object (never `text` itself, unless it is a
    one-character or empty string, which CPython shares anyway)."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")


def fresh_number(number: int) -> int:
    """An equal int that is a new object (CPython shares -5..256 anyway)."""
    return int(str(number))


class ValueTable:
    """Canonical copies of the values a policy build keeps (see the module docstring)."""

    __slots__ = ("_built", "_numbers", "_shared", "_texts")

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._numbers: dict[int, int] = {}
        self._shared: dict[tuple[type, Hashable], Any] = {}
        self._built: dict[Hashable, Any] = {}

    def text(self, value: str) -> str:
        """The table's copy of a string."""
        found = self._texts.get(value)
        if found is None:
            found = self._texts[value] = fresh_text(value)
        return found

    def texts(self, values: Sequence[str]) -> tuple[str, ...]:
        """The table's tuple of copies of `values`, in order."""
        return self.share(tuple(self.text(value) for value in values))

    def number(self, value: int) -> int:
        """The table's copy of an int."""
        found = self._numbers.get(value)
        if found is None:
            found = self._numbers[value] = fresh_number(value)
        return found

    def share(self, value: H) -> H:
        """The first equal value seen, for a hashable value built from table copies.

        The type is part of the key, so `1` and `1.0` stay distinct.
        """
        shared: H = self._shared.setdefault((type(value), value), value)
        return shared

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The object built for `key`, built with `build()` the first time it is asked for."""
        if key not in self._built:
            self._built[key] = build()
        built: T = self._built[key]
        return built
