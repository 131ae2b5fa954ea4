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

from aivault_ops.policy_document import PolicyConsumer
from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.shared_values import fresh_text

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


def _consumer(name: str, spec: PolicyConsumer, capabilities: Sequence[str]) -> Consumer:
    """A schema-checked consumer (its digest is 64 hex characters) with grants resolved."""
    digest = bytes.fromhex(spec.token_sha256)
    return Consumer(fresh_text(name), digest, granted_by(spec.capabilities, capabilities))


class ConsumerIndex:
    """Token → consumer, and consumer → granted capabilities."""

    __slots__ = ("_by_name", "_digests")

    def __init__(self, consumers: Iterable[Consumer]) -> None:
        self._by_name = {consumer.name: consumer for consumer in consumers}
        self._digests = tuple((c.token_digest, c.name) for c in self._by_name.values())

    @classmethod
    def build(
        cls, specs: Mapping[str, PolicyConsumer], capabilities: Iterable[str]
    ) -> ConsumerIndex:
        """The document's consumers, their globs resolved against `capabilities`."""
        names = sorted(capabilities)
        return cls(_consumer(name, spec, names) for name, spec in sorted(specs.items()))

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
