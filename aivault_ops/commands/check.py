"""`aivault-ops check`: would the runtime allow this request? (exit 0 allow, 1 deny, 2 usage)

Decided by the runtime's own code on the compiled policy of DIR (or a
verified bundle), without the age identity and without contacting any
upstream. Prints the rule that decided: the error code and message the
runtime would answer, the capability (and how it was picked), the prefix,
the credential and host, and the names of what would be injected.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._policy_source import add_source_options, load_source
from aivault_ops.errors import UsageError

if TYPE_CHECKING:
    from aivault_ops.policy_check.decide import Ask, Decision, OfflinePolicy

EXIT_DENY = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="decide one request offline: allow or deny, and the rule that decided",
        description="Decide one request with the runtime's own decision code, on DIR's compiled"
        " policy or a published bundle, without the age identity and without contacting any"
        " upstream. Exit 0: allow, 1: deny, 2: usage.",
    )
    add_source_options(parser)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--consumer", metavar="NAME", help="the calling consumer")
    who.add_argument(
        "--token-sha256", metavar="H", help="the sha256 (hex) of the calling consumer's token"
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--capability", metavar="CAP", help="the capability named (POST /aivault/proxy)"
    )
    what.add_argument(
        "--credential",
        metavar="CRED",
        help="the credential in the path (/v/CRED/…): the runtime picks the capability",
    )
    parser.add_argument("--method", required=True, metavar="M", help="HTTP method, e.g. GET")
    parser.add_argument(
        "--path", required=True, metavar="PATH", help="upstream path with query: '/v1/x?y=z'"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a request header the caller sends (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.set_defaults(func=from_args)


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_check`."""
    return run_check(
        repo=args.project_dir,
        bundle=args.bundle,
        trust=args.trust,
        environment=args.env,
        consumer=args.consumer,
        token_sha256=args.token_sha256,
        capability=args.capability,
        credential=args.credential,
        method=args.method,
        path=args.path,
        headers=args.header,
        as_json=args.json,
    )


def parse_headers(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`NAME=VALUE` (or `NAME: VALUE`) pairs; the consumer token is not one of them."""
    from aivault_ops.runtime.http.request_io import take_token

    pairs: list[tuple[str, str]] = []
    for value in values:
        separator = min((i for i in (value.find("="), value.find(":")) if i > 0), default=-1)
        if separator < 0:
            raise UsageError(f"--header {value!r}: use NAME=VALUE")
        pairs.append((value[:separator].strip(), value[separator + 1 :].strip()))
    token, _ = take_token(pairs)
    if token is not None:
        raise UsageError(
            "--header carries a consumer token: name the caller with --consumer or --token-sha256"
        )
    return tuple(pairs)


def resolve_consumer(policy: OfflinePolicy, consumer: str | None, token_sha256: str | None) -> str:
    """The consumer's name: a known name (else a usage error), or the owner of the token
    hash (an unknown hash is decided as the runtime would: 401)."""
    from aivault_ops.suggest import did_you_mean

    if token_sha256 is not None:
        return policy.consumer_for_digest(token_sha256) or ""
    name = str(consumer)
    if name not in policy.document.consumers:
        hint = did_you_mean(name, policy.names("consumers"))
        raise UsageError(f"no consumer named {name!r} in the policy{hint}")
    return name


def run_check(
    *,
    repo: Path | None,
    bundle: Path | None,
    trust: Sequence[str],
    environment: str | None,
    consumer: str | None,
    token_sha256: str | None,
    capability: str | None,
    credential: str | None,
    method: str,
    path: str,
    headers: Sequence[str] = (),
    as_json: bool = False,
) -> int:
    """Print the decision; exit 0 allow, 1 deny."""
    from aivault_ops.policy_check.decide import Ask

    if not path.startswith("/"):
        raise UsageError("--path must start with '/'")
    source = load_source(repo=repo, bundle=bundle, trust=trust, environment=environment)
    ask = Ask(
        consumer=resolve_consumer(source.policy, consumer, token_sha256),
        method=method,
        path=path,
        capability=capability,
        credential=credential,
        headers=parse_headers(headers),
    )
    decision = source.policy.decide(ask)
    if as_json:
        document = {"policy": source.described, "consumer": ask.consumer or None}
        document.update(decision.to_json())
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_decision(ask, decision))
    return 0 if decision.allowed else EXIT_DENY


def render_decision(ask: Ask, decision: Decision) -> str:
    """The human answer: the verdict line, then what decided it."""
    who = ask.consumer or "(unknown token)"
    lines = [f"{decision.verdict}: consumer {who}: {ask.describe()}"]
    if not decision.allowed:
        lines.append(f"  refused:    {decision.status} {decision.code}: {decision.message}")
    if decision.capability:
        lines.append(f"  capability: {decision.capability} ({decision.picked})")
    if decision.prefix:
        lines.append(f"  prefix:     {decision.prefix}")
    if decision.credential:
        host = f" -> https://{decision.host}" if decision.host else ""
        lines.append(f"  credential: {decision.credential}{host}")
    if decision.allowed:
        injected = [f"header {n}" for n in decision.injected_headers]
        injected += [f"query {n}" for n in decision.injected_query]
        if decision.injects_path_prefix:
            injected.append("a path prefix")
        lines.append(f"  injects:    {', '.join(injected) or 'nothing (client certificate)'}")
    return "\n".join(lines) + "\n"
