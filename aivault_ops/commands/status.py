"""`aivault-ops status`: what a running runtime serves (serial, revision, state, counts)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO


def register(subparsers: Any) -> None:
    """Add the `status` subcommand."""
    parser = subparsers.add_parser("status", help="show a running runtime's bundle and state")
    parser.add_argument("--runtime", metavar="URL", help="http://HOST:PORT or unix:/path.sock")
    parser.add_argument("--json", action="store_true", help="print the /status document")
    parser.add_argument(
        "--wait", type=float, default=0.0, metavar="S",
        help="wait up to S seconds for the runtime to answer and be ready (e.g. after start)",
    )  # fmt: skip
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_status`."""
    return run_status(runtime=args.runtime, as_json=args.json, wait=args.wait)


def render_status(document: dict[str, Any]) -> str:
    """Human lines: state, bundle, times, last error, counts."""
    counts = document.get("counts") or {}
    lines = [
        f"state:         {document.get('state')}",
        f"serial:        {_text(document.get('serial'))}",
        f"revision:      {_text(document.get('revision'))}",
        f"environment:   {_text(document.get('environment'))}",
        f"signed by:     {_text(document.get('keyid'))}",
        f"expires at:    {_text(document.get('expiresAt'))}",
        f"loaded at:     {_text(document.get('loadedAt'))}",
        f"last attempt:  {_text(document.get('lastAttempted'))}",
        f"last error:    {_text(document.get('lastError'))}",
    ]
    if isinstance(counts, dict):
        lines += [f"{name + ':':<15}{value}" for name, value in sorted(counts.items())]
    lines += [f"problem:       {problem}" for problem in document.get("problems") or []]
    return "\n".join(lines) + "\n"


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def run_status(
    *,
    runtime: str | None = None,
    as_json: bool = False,
    wait: float = 0.0,
    stdout: TextIO | None = None,
) -> int:
    """Print the status; exit 0 when `ready`, 1 when `degraded` or `not_ready`.

    `runtime` None: the default runtime URL; `wait`: seconds to wait for it to be ready.
    """
    from aivault_ops.runtime.http.client import DEFAULT_RUNTIME, RuntimeClient

    client = RuntimeClient(runtime or DEFAULT_RUNTIME, timeout_s=10.0)
    try:
        document = _poll(client, wait)
    finally:
        client.close()
    out = stdout or sys.stdout
    out.write(json.dumps(document, indent=2) + "\n" if as_json else render_status(document))
    return 0 if document.get("state") == "ready" else 1


def _poll(client: Any, wait_s: float) -> dict[str, Any]:
    """The status document; with `wait_s`, retried until ready (or the time is up, when
    the last answer, or the last error, is what counts)."""
    from aivault_ops.errors import AivaultError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            document: dict[str, Any] = client.status()
            if document.get("state") == "ready" or time.monotonic() >= deadline:
                return document
        except AivaultError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.1)
