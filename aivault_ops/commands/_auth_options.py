"""The strategy flags of `credential create` and `registry new`, spelled as aivault spells them."""

from __future__ import annotations

import argparse

from aivault_ops.authoring.auth_flags import STRATEGIES, AuthFlags


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """`--auth STRATEGY` and every strategy's flags."""
    parser.add_argument(
        "--auth", choices=STRATEGIES, metavar="STRATEGY", help=", ".join(STRATEGIES)
    )
    parser.add_argument("--header-name", metavar="NAME", help="header, hmac")
    parser.add_argument("--value-template", metavar="TPL", help="header, hmac ({{secret}})")
    parser.add_argument("--query-param", metavar="NAME", help="query")
    parser.add_argument("--path-prefix-template", metavar="TPL", help="path")
    parser.add_argument(
        "--auth-header", action="append", default=[], metavar="NAME=TPL", help="multi_header"
    )
    parser.add_argument(
        "--auth-query", action="append", default=[], metavar="NAME=TPL", help="multi_query"
    )
    parser.add_argument("--grant-type", metavar="G", help="o_auth2")
    parser.add_argument("--token-endpoint", metavar="URL", help="o_auth2")
    parser.add_argument("--scope", action="append", default=[], metavar="S", help="o_auth2")
    parser.add_argument("--aws-service", metavar="S", help="aws_sig_v4")
    parser.add_argument("--aws-region", metavar="R", help="aws_sig_v4")
    parser.add_argument("--hmac-algorithm", metavar="A", help="hmac (sha256, sha512)")
    parser.add_argument(
        "--hmac-message", metavar="M", help="hmac (request, the default; canonical; body)"
    )


def auth_flags(args: argparse.Namespace) -> AuthFlags:
    """The strategy flags as parsed."""
    return AuthFlags(
        header_name=args.header_name,
        value_template=args.value_template,
        query_param=args.query_param,
        path_prefix_template=args.path_prefix_template,
        auth_header=tuple(args.auth_header),
        auth_query=tuple(args.auth_query),
        grant_type=args.grant_type,
        token_endpoint=args.token_endpoint,
        scope=tuple(args.scope),
        aws_service=args.aws_service,
        aws_region=args.aws_region,
        hmac_algorithm=args.hmac_algorithm,
        hmac_message=args.hmac_message,
    )
