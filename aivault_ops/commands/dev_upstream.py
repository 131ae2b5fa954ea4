"""`aivault-ops dev-upstream`: a local HTTPS echo server standing in for a policy host."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_HOST = "api.example.com"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dev-upstream`."""
    parser = subparsers.add_parser(
        "dev-upstream",
        help="DEVELOPMENT ONLY: a local HTTPS echo server for trying `serve` on one machine",
        description="Serve HTTPS on 127.0.0.1 for the given policy hosts with a throwaway CA,"
        " answer every request with what arrived (headers included, so runtime redaction"
        " shows), and print the `serve` flags that send those hosts here.",
    )
    parser.add_argument(
        "--host", action="append", metavar="H",
        help=f"policy host to stand in for (repeatable; default {DEFAULT_HOST})",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument(
        "--dir", type=Path, metavar="D", help="where to write the CA and server certificate"
        " (default: a new temporary directory)",
    )  # fmt: skip
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_dev_upstream`."""
    return run_dev_upstream(hosts=args.host or [DEFAULT_HOST], port=args.port, directory=args.dir)


def run_dev_upstream(*, hosts: Sequence[str], port: int = 0, directory: Path | None = None) -> int:
    """Make the certificates, print the serve flags, serve until interrupted.

    `port` 0: any free port; `directory` None: a new temporary directory.
    """
    from aivault_ops.dev_upstream import (
        default_directory,
        make_certificates,
        serve_flags,
        start_server,
    )

    directory = directory or default_directory()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = make_certificates(hosts, directory)
    server = start_server(files, port)
    bound = server.server_address[1]
    flags = " ".join(shlex.quote(flag) for flag in serve_flags(hosts, bound, files.ca_cert))
    out = sys.stdout.write
    out(f"dev upstream (DEVELOPMENT ONLY) on https://127.0.0.1:{bound} for {', '.join(hosts)}\n")
    out(f"pass to `aivault-ops serve`: {flags}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
