"""Run policy test cases against a policy: each case's decision against its expectation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aivault_ops.diagnostics import Diagnostic
from aivault_ops.policy_check.cases import PolicyCase
from aivault_ops.policy_check.decide import Decision, OfflinePolicy

FAILED = "E-TEST-FAILED"


@dataclass(frozen=True)
class Outcome:
    """One case decided."""

    case: PolicyCase
    decision: Decision

    @property
    def passed(self) -> bool:
        case, decision = self.case, self.decision
        if case.expect != decision.verdict:
            return False
        return case.code is None or case.code == decision.code

    def expected(self) -> str:
        return f"{self.case.expect} ({self.case.code})" if self.case.code else self.case.expect

    def got(self) -> str:
        return self.decision.summary()

    def diagnostic(self) -> Diagnostic:
        """`path:line:col: E-TEST-FAILED: expected allow, got deny (E-…: …) [case]`."""
        message = f"expected {self.expected()}, got {self.got()} [{self.case.describe()}]"
        return Diagnostic(self.case.location, FAILED, message)

    def to_json(self) -> dict[str, Any]:
        location = self.case.location
        return {
            "file": location.path,
            "line": location.line,
            "column": location.column,
            "name": self.case.name,
            "consumer": self.case.ask.consumer,
            "request": self.case.ask.describe(),
            "expected": self.case.expect,
            "expectedCode": self.case.code,
            "passed": self.passed,
            **{"got": self.decision.to_json()},
        }


def run_cases(policy: OfflinePolicy, cases: Iterable[PolicyCase]) -> list[Outcome]:
    """Every case decided by `policy`, in order."""
    return [Outcome(case, policy.decide(case.ask)) for case in cases]
