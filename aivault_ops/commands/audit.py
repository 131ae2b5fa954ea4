"""`aivault-ops audit verify [--state-dir D] [--json]`: check the audit hash chain
(the retained part of it, when older files were pruned)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aivault_ops.errors import AivaultError

if TYPE_CHECKING:
    from aivault_ops.runtime.observe.audit_anchor import Anchor
    from aivault_ops.runtime.observe.audit_verify import ChainReport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `audit` command group (`audit verify`)."""
    parser = subparsers.add_parser("audit", help="inspect the runtime's audit log")
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    actions.required = True
    verify = actions.add_parser("verify", help="check the audit log's hash chain")
    verify.add_argument(
        "--state-dir",
        type=Path,
        help="the runtime's state dir (default: $XDG_STATE_HOME/aivault-ops"
        " or ~/.local/state/aivault-ops)",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=verify_from_args)


def verify_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_audit_verify`."""
    return run_audit_verify(state_dir=args.state_dir, as_json=args.json)


def run_audit_verify(*, state_dir: Path | None, as_json: bool = False) -> int:
    """Exit 0 when every line links to its predecessor, 1 at the first broken line.

    `state_dir` None: the runtime's default ($XDG_STATE_HOME/aivault-ops …).
    """
    from aivault_ops.runtime.bundles.state import default_state_dir
    from aivault_ops.runtime.observe.audit_verify import verify_chain

    state_dir = state_dir or default_state_dir(os.environ)
    if not (state_dir / "audit").is_dir():
        raise AivaultError(
            f"{state_dir}: no audit log (expected {state_dir / 'audit'})",
            hint="pass the runtime's --state-dir",
        )
    report = verify_chain(state_dir)
    if as_json:
        sys.stdout.write(json.dumps(_as_json(report), sort_keys=True) + "\n")
    elif report.broken is not None:
        sys.stdout.write(f"{report.broken}\n")
    else:
        sys.stdout.write(
            f"audit chain ok: {report.lines} lines in {report.files} files; head {report.head}\n"
        )
    if report.anchor is not None and not as_json:
        sys.stdout.write(_pruned_text(report.anchor))
    return 0 if report.ok else 1


def _pruned_text(anchor: Anchor) -> str:
    """What retention removed, and the hash the retained chain starts from."""
    dated = f", the last line dated {anchor.last_ts}" if anchor.last_ts else ""
    return (
        f"pruned: {anchor.files} files ({anchor.bytes} bytes) up to {anchor.through}{dated};"
        f" the retained chain starts from {anchor.prev}\n"
    )


def _as_json(report: ChainReport) -> dict[str, Any]:
    broken, anchor = report.broken, report.anchor
    return {
        "ok": report.ok,
        "files": report.files,
        "lines": report.lines,
        "head": report.head,
        "broken": None
        if broken is None
        else {"file": str(broken.file), "line": broken.line, "reason": broken.reason},
        "pruned": None
        if anchor is None
        else {
            "files": anchor.files,
            "bytes": anchor.bytes,
            "through": anchor.through,
            "lastTs": anchor.last_ts,
            "prev": anchor.prev,
        },
    }
