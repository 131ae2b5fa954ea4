"""Command-line entry point: argparse, dispatch, and the one error handler."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from aivault_ops import __version__
from aivault_ops.commands import COMMAND_MODULES
from aivault_ops.errors import AivaultError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full `aivault-ops` parser; each command module adds its own subparser."""
    parser = _Parser(prog="aivault-ops", description="GitOps for an AI credential broker.")
    parser.add_argument("--version", action="version", version=f"aivault-ops {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="show tracebacks for internal errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 invalid/refused, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = argv is None  # this process is the command itself, not a caller's
    try:
        code: int = args.func(args)
    except AivaultError as error:
        sys.stderr.write(f"aivault-ops: error: {error.diagnostics()}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("aivault-ops: interrupted\n")
        return 130
    except Exception as error:
        if args.verbose:
            traceback.print_exc()
        sys.stderr.write(
            f"aivault-ops: internal error: {type(error).__name__}"
            " (run with --verbose for details; please report it)\n"
        )
        return 1
    return code
