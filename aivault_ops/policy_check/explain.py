"""`plan --explain`: the decisions that flip between the published policy and the new one.

A reviewer reads a YAML diff; what they need is who may now call what. For
every capability that changed (its rules, or which consumers it is granted
to), a small probe set is decided by both policies, with the runtime's own
code (`decide.py`): each method the capability allows (before or after) at
each of its prefixes, a sibling path outside the prefix, and a method it
does not allow, for every consumer granted it on either side. The repo's
own test cases are decided by both too. A flip is a request whose verdict
differs: `consumer research-agent: DELETE /v1/users/7 on my-api/users: deny -> allow`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aivault_ops.policy_check.decide import Ask, Decision, OfflinePolicy
from aivault_ops.policy_document import PolicyCapability, PolicyDocument
from aivault_ops.runtime.policy.consumers import granted_by

_OTHER_METHODS = ("DELETE", "PUT", "PATCH", "POST", "GET")
TEXT_LIMIT = 200
_NOTHING_PUBLISHED = Decision("deny", 503, "E-NO-POLICY", "no policy is published yet")


@dataclass(frozen=True)
class Flip:
    """One request whose verdict differs between the two policies."""

    ask: Ask
    before: Decision
    after: Decision
    origin: str  # "test" (a case of tests/) or "probe"

    def line(self) -> str:
        """`consumer c: DELETE /x on cap: deny -> allow (was E-…)`."""
        why = self.after if not self.after.allowed else self.before
        reason = f" ({'now' if why is self.after else 'was'} {why.code})" if why.code else ""
        return (
            f"consumer {self.ask.consumer}: {self.ask.describe()}: "
            f"{self.before.verdict} -> {self.after.verdict}{reason}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.ask.consumer,
            "request": self.ask.describe(),
            "origin": self.origin,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
        }


def _grants(document: PolicyDocument | None) -> dict[str, frozenset[str]]:
    if document is None:
        return {}
    names = sorted(document.capabilities)
    return {name: granted_by(spec.capabilities, names) for name, spec in document.consumers.items()}


def changed_capabilities(
    before: PolicyDocument | None,
    after: PolicyDocument,
    grants: tuple[Mapping[str, frozenset[str]], Mapping[str, frozenset[str]]] | None = None,
) -> set[str]:
    """Capabilities added, removed or changed, or whose set of grantees changed."""
    old: Mapping[str, PolicyCapability] = before.capabilities if before else {}
    changed = {
        name
        for name in set(old) | set(after.capabilities)
        if old.get(name) != after.capabilities.get(name)
    }
    old_grants, new_grants = grants or (_grants(before), _grants(after))
    for consumer in set(old_grants) | set(new_grants):
        changed |= old_grants.get(consumer, frozenset()) ^ new_grants.get(consumer, frozenset())
    return changed


def _sibling(prefix: str) -> str:
    """A path next to the prefix, outside it: `/v1/users` → `/v1/aivault-probe`."""
    parent = posixpath.dirname(prefix.rstrip("/")) or "/"
    return posixpath.join(parent, "aivault-probe")


def _at(prefix: str) -> str:
    return prefix + "aivault-probe" if prefix.endswith("/") else prefix


def probes(
    before: PolicyDocument | None,
    after: PolicyDocument,
    capability: str,
    grantees: Iterable[str] | None = None,
) -> Iterator[Ask]:
    """The probe requests of one changed capability, for each of `grantees` (default:
    every consumer granted it on either side)."""
    specs = [
        d.capabilities[capability] for d in (before, after) if d and capability in d.capabilities
    ]
    methods = sorted({m for spec in specs for m in spec.methods})
    prefixes = sorted({p for spec in specs for p in spec.path_prefixes})
    denied = next((m for m in _OTHER_METHODS if m not in methods), None)
    paths = [(m, _at(p)) for p in prefixes for m in methods]
    paths += [(methods[0], _sibling(p)) for p in prefixes if methods]
    paths += [(denied, _at(p)) for p in prefixes[:1] if denied]
    consumers = sorted(
        {
            c
            for grants in (_grants(before), _grants(after))
            for c, g in grants.items()
            if capability in g
        }
    )
    for consumer in consumers:
        for method, path in dict.fromkeys(paths):
            yield Ask(consumer=consumer, method=method, path=path, capability=capability)


def _grantees(
    grants: tuple[Mapping[str, frozenset[str]], Mapping[str, frozenset[str]]],
) -> dict[str, set[str]]:
    """Capability → the consumers granted it on either side."""
    found: dict[str, set[str]] = {}
    for side in grants:
        for consumer, granted in side.items():
            for capability in granted:
                found.setdefault(capability, set()).add(consumer)
    return found


def explain(
    before: PolicyDocument | None, after: PolicyDocument, cases: Iterable[Ask] = ()
) -> list[Flip]:
    """Every test case and probe whose verdict flips from `before` to `after`."""
    old = OfflinePolicy(before) if before is not None else None
    new = OfflinePolicy(after)
    asked: dict[Ask, str] = dict.fromkeys(cases, "test")
    grants = (_grants(before), _grants(after))
    grantees = _grantees(grants)
    for capability in sorted(changed_capabilities(before, after, grants)):
        for ask in probes(before, after, capability, grantees.get(capability, ())):
            asked.setdefault(ask, "probe")
    flips: list[Flip] = []
    for ask, origin in asked.items():
        was = old.decide(ask) if old is not None else _NOTHING_PUBLISHED
        now = new.decide(ask)
        if was.verdict != now.verdict:
            flips.append(Flip(ask, was, now, origin))
    return flips


def render_text(flips: list[Flip], limit: int = TEXT_LIMIT) -> str:
    """The `--explain` section of the human plan (at most `limit` lines of flips: a first
    publish of a large policy flips every allowed probe; `--json` lists them all)."""
    if not flips:
        return "Decisions: no tested or probed request changes its verdict\n"
    lines = [f"Decisions that change ({len(flips)}):"]
    lines += [f"  {flip.line()}  [{flip.origin}]" for flip in flips[:limit]]
    if len(flips) > limit:
        lines.append(f"  … and {len(flips) - limit} more (--json lists every one)")
    return "\n".join(lines) + "\n"
