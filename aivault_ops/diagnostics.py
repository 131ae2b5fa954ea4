"""Validation diagnostics: `path:line:col: CODE: message`, collected, sorted, rendered.

Every problem in a policy repo becomes one `Diagnostic`; a `Report` collects
them all so a user sees every error at once (check-jsonschema style). Error
codes are stable and documented in the README.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a file; `path` is relative to the project directory."""

    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem: where, a stable code, and a message that says what to do."""

    location: Location
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.code}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self.location), "code": self.code, "message": self.message}


@dataclass
class Report:
    """Collects diagnostics; duplicates are dropped, output is sorted."""

    _items: set[Diagnostic] = field(default_factory=set)

    def add(self, location: Location, code: str, message: str) -> None:
        self._items.add(Diagnostic(location, code, message))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.update(diagnostics)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def rebased(self, prefix: str) -> list[Diagnostic]:
        """The diagnostics with `prefix` put before every path (for display)."""
        return [
            Diagnostic(
                Location(prefix + d.location.path, d.location.line, d.location.column),
                d.code,
                d.message,
            )
            for d in self
        ]

    @property
    def ok(self) -> bool:
        return not self._items

    def render_text(self) -> str:
        return "".join(f"{item}\n" for item in self)

    def render_json(self) -> str:
        return json.dumps([item.to_json() for item in self], indent=2, ensure_ascii=False) + "\n"
