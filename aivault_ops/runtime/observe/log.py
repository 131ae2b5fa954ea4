"""The runtime's own log: one structured line per event on stderr."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO


@dataclass
class StderrLog:
    """Structured log lines on stderr; callers pass names and codes, never secret values."""

    json_lines: bool = True
    stream: TextIO = field(default_factory=lambda: sys.stderr)

    def __call__(self, event: str, **fields: Any) -> None:
        """Write one line."""
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.json_lines:
            line = json.dumps({"ts": ts, "event": event, **fields}, default=str)
        else:
            line = " ".join([ts, event, *(f"{k}={v}" for k, v in fields.items())])
        self.stream.write(line + "\n")
        self.stream.flush()
