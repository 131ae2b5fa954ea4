"""Caller headers that choose the operation or a second resource: refused unless listed.

A capability's `pathPrefixes` cannot see two kinds of header:

- `X-Amz-Target` picks the operation of every AWS JSON-protocol API
  (DynamoDB, KMS, Secrets Manager, SSM, Kinesis, CloudWatch Logs, ECR …)
  on the path `/`: `DynamoDB_20120810.DeleteTable` reaches the same path as
  `DynamoDB_20120810.GetItem`. It passes only when its value is one of the
  capability's `operations` (exact, case-sensitive).
- the copy and rename sources (`x-amz-copy-source`, `x-amz-rename-source`,
  `x-goog-copy-source`, `x-ms-copy-source`, `x-ms-rename-source`) name a
  second object the upstream reads (S3 CopyObject and UploadPartCopy, S3
  Express RenameObject, the GCS XML API, Azure Blob and Data Lake). They
  pass only when the source lies under one of the capability's
  `copySourcePrefixes`, judged by the same traversal rules and
  segment-boundary match as the request path. The source is `bucket/key`
  (a leading `/` optional, `?versionId=…` not part of the match) or, as
  Azure sends it, a URL whose host must be the capability's host.

The rule holds whatever the credential's auth strategy: a bearer token to an
AWS-compatible API (LocalStack, MinIO, ScyllaDB Alternator) is the same
risk as a SigV4 key. Names are compared by `names.name_key` like every
header rule (`X_Amz_Target` counts as `X-Amz-Target`); a header sent twice
is refused. Refusal: 403 `E-OPERATION-FORBIDDEN`. The per-request cost for
a request without these headers is one dictionary look-up per header name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from aivault_ops.runtime.model import Refusal, echo
from aivault_ops.runtime.policy.checks.names import name_key
from aivault_ops.runtime.policy.checks.path import PathPrefix, longest_match, parse_path

OPERATION_HEADER: Final = "x-amz-target"
SOURCE_HEADERS: Final = (
    "x-amz-copy-source", "x-amz-rename-source", "x-goog-copy-source",
    "x-ms-copy-source", "x-ms-rename-source",
)  # fmt: skip
CODE: Final = "E-OPERATION-FORBIDDEN"
_BY_KEY: Final = {name_key(name): name for name in (OPERATION_HEADER, *SOURCE_HEADERS)}
_SEEN_MAX: Final = 4096
# Header name as sent -> the operation header it reads as ("" for none). Callers repeat
# the same dozen names, so a request without these headers costs one look-up per name.
_seen: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class OperationRules:
    """A capability's allowed `X-Amz-Target` values and copy-source prefixes."""

    operations: frozenset[str] = frozenset()
    copy_sources: tuple[PathPrefix, ...] = ()


NO_OPERATIONS: Final = OperationRules()


def operation_header(name: str) -> str:
    """The operation-selecting header `name` reads as (lower case), or ""."""
    found = _seen.get(name)
    if found is None:
        found = _BY_KEY.get(name_key(name), "")
        if len(_seen) < _SEEN_MAX:
            _seen[name] = found
    return found


def check_operation_headers(
    rules: OperationRules, headers: Iterable[tuple[str, str]], *, host: str, capability: str
) -> None:
    """Refuse an operation or a copy source the capability does not list (see the module)."""
    sent: set[str] | None = None
    for name, value in headers:
        header = operation_header(name)
        if not header:
            continue
        sent = sent if sent is not None else set()
        if header in sent:
            raise Refusal(403, CODE, f"header {header!r} is sent more than once")
        sent.add(header)
        if header == OPERATION_HEADER:
            _check_operation(rules, name, value, capability)
        else:
            _check_source(rules, name, value, host, capability)


def _check_operation(rules: OperationRules, name: str, value: str, capability: str) -> None:
    if value not in rules.operations:
        listed = ", ".join(sorted(rules.operations)) or "none"
        raise Refusal(
            403,
            CODE,
            f"header {echo(name)} selects operation {echo(value)}, which capability"
            f" {capability!r} does not list in allow.operations (listed: {listed})",
        )


def _check_source(rules: OperationRules, name: str, value: str, host: str, capability: str) -> None:
    decoded = _source_path(value, host)
    if decoded is None or longest_match(rules.copy_sources, decoded) < 0:
        listed = ", ".join(p.text for p in rules.copy_sources) or "none"
        shown = value.split("?", 1)[0]  # a query may carry a token (an Azure SAS): not echoed
        raise Refusal(
            403,
            CODE,
            f"header {echo(name)} names source {echo(shown)}, which is not under the"
            f" allow.copySourcePrefixes of capability {capability!r} (listed: {listed})",
        )


def _source_path(value: str, host: str) -> bytes | None:
    """The decoded path of a copy source, or None when it cannot be judged."""
    if value[:8].lower().startswith(("https://", "http://")):
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            return None
        if (parts.hostname or "") != host or port not in (None, 443) or parts.username:
            return None
        path = parts.path
    else:
        path = value.split("?", 1)[0]
        path = path if path.startswith("/") else "/" + path
    try:
        return parse_path(path).decoded
    except Refusal:
        return None
