"""`aivault-ops invoke CAP`: call a capability through a running runtime."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal
from urllib.parse import parse_qsl

from aivault_ops.errors import AivaultError, UsageError

CALLER_ENV = "AIVAULT_OPS_TOKEN"


def register(subparsers: Any) -> None:
    """Add the `invoke` subcommand."""
    parser = subparsers.add_parser("invoke", help="call a capability through the runtime")
    parser.add_argument("capability", metavar="CAP", help="capability name, e.g. my-api/users")
    parser.add_argument("--method", default="GET", metavar="M", help="HTTP method (default GET)")
    parser.add_argument(
        "--path",
        metavar="P",
        help="upstream path, may end in ?k=v&… (default: the capability's path prefix in the"
        " policy repo of --dir when it has exactly one, else /)",
    )
    parser.add_argument(
        "--dir", type=Path, metavar="DIR", help="policy repo for --path's default (./vault.d or .)"
    )
    parser.add_argument("--query", action="append", default=[], metavar="K=V", help="repeatable")
    parser.add_argument("--header", action="append", default=[], metavar="K=V", help="repeatable")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="S", help="request body text")
    body.add_argument(
        "--body-file", type=Path, metavar="F", help="read the request body from this file"
    )
    body.add_argument("--json", dest="json_body", metavar="J", help="JSON request body")
    parser.add_argument("--runtime", metavar="URL", help="http://HOST:PORT or unix:/path.sock")
    parser.add_argument("--token", metavar="T", help=f"consumer token (default ${CALLER_ENV})")
    parser.add_argument(
        "--output", choices=["body", "json"], default="body",
        help="body: the upstream body on stdout; json: status, headers and body as JSON",
    )  # fmt: skip
    parser.set_defaults(func=from_args)


@dataclass(frozen=True)
class CallOptions:
    """The request `invoke` sends: what the envelope is built from."""

    capability: str
    method: str = "GET"
    path: str | None = None  # may end in ?k=v&…; None: the capability's one path prefix
    query: Sequence[str] = ()  # K=V, repeatable
    headers: Sequence[str] = ()  # K=V, repeatable
    body: str | None = None  # at most one of body, body_file, json_body
    body_file: Path | None = None
    json_body: str | None = None


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_invoke`."""
    call = CallOptions(
        capability=args.capability,
        method=args.method,
        path=args.path,
        query=args.query,
        headers=args.header,
        body=args.body,
        body_file=args.body_file,
        json_body=args.json_body,
    )
    return run_invoke(
        call=call, runtime=args.runtime, token=args.token, output=args.output, directory=args.dir
    )


def _pairs(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} {value!r}: expected K=V")
        pairs.append((key, rest))
    return pairs


def query_object(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """The envelope's `query` object; a repeated key becomes a list, in order."""
    query: dict[str, str | list[str]] = {}
    for key, value in pairs:
        previous = query.get(key)
        if previous is None:
            query[key] = value
        else:
            query[key] = [*([previous] if isinstance(previous, str) else previous), value]
    return query


def body_fields(call: CallOptions) -> dict[str, str]:
    """`body` (UTF-8 text) or `bodyBase64` (anything else); read --body-file here."""
    if call.json_body is not None:
        try:
            json.loads(call.json_body)
        except ValueError as error:
            raise UsageError(f"--json: not valid JSON ({error})") from None
        return {"body": call.json_body}
    if call.body is not None:
        return {"body": call.body}
    if call.body_file is None:
        return {}
    try:
        data = call.body_file.read_bytes()
    except OSError as error:
        raise AivaultError(f"--body-file {call.body_file}: {error.strerror}") from None
    try:
        return {"body": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(data).decode("ascii")}


def split_path(path: str) -> tuple[str, list[tuple[str, str]]]:
    """`/p?k=v&…` → (`/p`, decoded pairs); the envelope encodes them again, once.

    Names and values are percent-decoded (and `+` is a space, as in a form), so
    `?q=a%20b` reaches the upstream as `q=a%20b`, not `q=a%2520b`.
    """
    if "#" in path:
        raise UsageError(f"--path {path!r}: a fragment (#…) is never sent to a server; remove it")
    bare, _, query = path.partition("?")
    return bare, parse_qsl(query, keep_blank_values=True)


def build_envelope(call: CallOptions) -> dict[str, Any]:
    """The `POST /aivault/proxy` envelope for these options."""
    headers = dict(_pairs(call.headers, "--header"))
    if call.json_body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["content-type"] = "application/json"
    path, from_path = split_path(call.path or "/")
    request: dict[str, Any] = {
        "method": call.method.upper(),
        "path": path,
        "query": query_object([*from_path, *_pairs(call.query, "--query")]),
        "headers": headers,
        **body_fields(call),
    }
    return {"capability": call.capability, "request": request}


_ENVELOPE_FIELD = re.compile(r"\brequest\.(path|query|headers|bodyBase64|body|method)\b")
_FLAG_OF_FIELD = {
    "path": "--path",
    "query": "--query",
    "headers": "--header",
    "bodyBase64": "--body-file",
    "body": "--body",
    "method": "--method",
}


def in_cli_terms(message: str) -> str:
    """A runtime message with envelope fields named as the CLI flags that set them."""
    return _ENVELOPE_FIELD.sub(lambda match: _FLAG_OF_FIELD[match.group(1)], message)


def response_body(answer: dict[str, Any]) -> bytes:
    """The upstream body from the runtime's answer (`body` or `bodyBase64`)."""
    if isinstance(answer.get("bodyBase64"), str):
        try:
            return base64.b64decode(answer["bodyBase64"], validate=True)
        except binascii.Error:
            raise AivaultError("the runtime sent an invalid bodyBase64") from None
    body = answer.get("body")
    return body.encode("utf-8") if isinstance(body, str) else b""


def run_invoke(
    *,
    call: CallOptions,
    runtime: str | None = None,
    token: str | None = None,
    output: Literal["body", "json"] = "body",
    stdout: BinaryIO | None = None,
    directory: Path | None = None,
) -> int:
    """Send one call; print the upstream body (or JSON); refusals exit 1 via `main`.

    `runtime` None: the default runtime URL; `token` None: $AIVAULT_OPS_TOKEN;
    `call.path` None: the capability's one path prefix in the policy repo `directory`.
    """
    from aivault_ops.runtime.http.client import DEFAULT_RUNTIME, RuntimeClient, RuntimeRefused

    token = token or os.environ.get(CALLER_ENV)
    if not token:
        raise UsageError(f"no consumer token: pass --token or set {CALLER_ENV}")
    if call.path is None:
        from dataclasses import replace

        from aivault_ops.commands._invoke_path import only_path_prefix

        call = replace(call, path=only_path_prefix(call.capability, directory))
    envelope = build_envelope(call)
    client = RuntimeClient(runtime or DEFAULT_RUNTIME)
    try:
        answer = client.invoke(envelope, token)
    except RuntimeRefused as refused:
        raise RuntimeRefused(refused.status, refused.code, in_cli_terms(refused.message)) from None
    finally:
        client.close()
    out = stdout or sys.stdout.buffer
    if output == "json":
        out.write(json.dumps(answer, indent=2).encode() + b"\n")
    else:
        out.write(response_body(answer))
    out.flush()
    return 0
