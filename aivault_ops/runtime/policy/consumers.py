"""Who may call the runtime: consumer tokens and capability grants.

A consumer is known by the sha256 of its bearer token; the token itself is
never stored. Grants are glob patterns (`openai/*`) resolved against the
bundle's capabilities once per load, so authorizing a request is a set
lookup. Resolving follows `fnmatch.fnmatchcase` exactly; a plain name or a
`prefix*` pattern is resolved by lookup in the sorted names rather than by
testing every capability against it.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.shared_values import fresh_text

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_GLOB_SPECIAL = re.compile(r"[*?\[]")
_UNAUTHENTICATED = "a valid consumer token is required (Authorization: Bearer or X-Aivault-Token)"


@dataclass(frozen=True)
class Consumer:
    """One consumer: its token digest and the capabilities its globs grant."""

    name: str
    token_digest: bytes
    granted: frozenset[str]

    def __repr__(self) -> str:
        return f"Consumer(name={self.name!r}, granted={sorted(self.granted)!r})"


def _matching(pattern: str, names: Sequence[str]) -> Iterable[str]:
    """The names `pattern` matches, as `fnmatch.fnmatchcase`; `names` sorted."""
    special = _GLOB_SPECIAL.search(pattern)
    if special is None:
        at = bisect.bisect_left(names, pattern)
        return (names[at],) if at < len(names) and names[at] == pattern else ()
    if special.start() == len(pattern) - 1 and pattern.endswith("*"):
        prefix = pattern[:-1]
        start = bisect.bisect_left(names, prefix)
        end = start
        while end < len(names) and names[end].startswith(prefix):
            end += 1
        return names[start:end]
    matcher = re.compile(translate(pattern)).match
    return [name for name in names if matcher(name)]


def granted_by(patterns: Iterable[str], names: Sequence[str]) -> frozenset[str]:
    """Every name of the sorted `names` that one of the glob `patterns` matches."""
    return frozenset(name for pattern in patterns for name in _matching(pattern, names))


def _parse_consumer(name: str, spec: Any, capabilities: Sequence[str]) -> Consumer:
    if not isinstance(spec, Mapping):
        raise AivaultError(f"policy: consumer {name!r} must be an object")
    digest = spec.get("tokenSha256")
    patterns = spec.get("capabilities")
    if not isinstance(digest, str) or _SHA256_HEX.fullmatch(digest) is None:
        raise AivaultError(f"policy: consumer {name!r} has no valid tokenSha256")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise AivaultError(f"policy: consumer {name!r} capabilities must be a list of globs")
    return Consumer(fresh_text(name), bytes.fromhex(digest), granted_by(patterns, capabilities))


class ConsumerIndex:
    """Token → consumer, and consumer → granted capabilities."""

    __slots__ = ("_by_name", "_digests")

    def __init__(self, consumers: Iterable[Consumer]) -> None:
        self._by_name = {consumer.name: consumer for consumer in consumers}
        self._digests = tuple((c.token_digest, c.name) for c in self._by_name.values())

    @classmethod
    def build(cls, specs: Any, capabilities: Iterable[str]) -> ConsumerIndex:
        """Parse `policy["consumers"]`; raises `AivaultError` on a malformed entry."""
        if not isinstance(specs, Mapping):
            raise AivaultError("policy: consumers must be an object")
        names = sorted(capabilities)
        return cls(_parse_consumer(str(n), spec, names) for n, spec in sorted(specs.items()))

    def __len__(self) -> int:
        return len(self._by_name)

    def authenticate(self, token: str | None) -> str:
        """The consumer whose token this is; `Refusal` 401 otherwise.

        Compares the sha256 of the token with every known digest using
        `hmac.compare_digest`, without stopping at a match, so timing reveals
        neither which consumer matched nor how much of a digest did.
        """
        if not token:
            raise Refusal(401, "E-UNAUTHENTICATED", _UNAUTHENTICATED)
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: str | None = None
        for digest, name in self._digests:
            if hmac.compare_digest(presented, digest) and found is None:
                found = name
        if found is None:
            raise Refusal(401, "E-UNAUTHENTICATED", _UNAUTHENTICATED)
        return found

    def is_granted(self, consumer: str, capability: str) -> bool:
        """Whether the consumer's globs grant the capability (unknown consumer: no)."""
        known = self._by_name.get(consumer)
        return known is not None and capability in known.granted
