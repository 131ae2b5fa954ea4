"""Policy test files: expansion, positions, problems as diagnostics, unknown names."""

from __future__ import annotations

from pathlib import Path

import pytest

from aivault_ops.compiled_project import compile_project
from aivault_ops.diagnostics import Location, Report
from aivault_ops.policy_check.cases import (
    check_names,
    load_cases,
    parse_cases,
    policy_test_files,
    validate_test_files,
)

VAULT = Path(__file__).resolve().parents[2] / "vault.d"
HEAD = "apiVersion: aivault.dev/v1\nkind: PolicyTest\nmetadata:\n  name: t\nspec:\n  cases:\n"


def parse(body: str) -> tuple[list[object], list[str]]:
    report = Report()
    cases = parse_cases("tests/t.yaml", HEAD + body, report)
    return list(cases), [str(d) for d in report]


def test_methods_and_paths_expand_to_every_pair_at_the_case_position() -> None:
    cases, problems = parse(
        "    - consumer: a\n"
        "      request: {capability: p/c, methods: [GET, POST], paths: [/x, /y?q=1]}\n"
        "      expect: allow\n"
    )
    assert problems == []
    asked = [(c.ask.method, c.ask.path) for c in cases]  # type: ignore[attr-defined]
    assert asked == [("GET", "/x"), ("GET", "/y?q=1"), ("POST", "/x"), ("POST", "/y?q=1")]
    assert {c.location for c in cases} == {Location("tests/t.yaml", 7, 7)}  # type: ignore[attr-defined]


def test_method_defaults_to_get_and_headers_are_kept() -> None:
    cases, _ = parse(
        "    - consumer: a\n"
        "      request: {credential: p, path: /x, headers: {X-T: '1'}}\n"
        "      expect: deny\n      code: E-FORBIDDEN\n"
    )
    (case,) = cases
    assert (case.ask.method, case.ask.headers, case.code) == ("GET", (("X-T", "1"),), "E-FORBIDDEN")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_yaml", "problem"),
    [
        ("{path: /x}", "E-TEST-INVALID: request needs exactly one of capability or credential"),
        ("{capability: c, credential: p, path: /x}", "(both given)"),
        ("{capability: c}", "exactly one of path or paths (neither given)"),
        ("{capability: c, path: /x, method: GET, methods: [GET]}", "method or methods, not both"),
        ("{capability: c, path: x}", "tests/t.yaml:8:"),
    ],
    ids=["no-target", "both-targets", "no-path", "both-methods", "schema"],
)
def test_a_malformed_case_is_a_positioned_problem(request_yaml: str, problem: str) -> None:
    cases, problems = parse(
        f"    - consumer: a\n      request: {request_yaml}\n      expect: allow\n"
    )
    assert cases == []
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("kind: Consumer\napiVersion: aivault.dev/v1\n", "E-KIND-UNKNOWN"),
        ("kind: PolicyTest\napiVersion: v0\n", "E-API-VERSION"),
        ("- a\n", "E-YAML-NOT-MAPPING"),
        ("a: [\n", "E-YAML"),
    ],
    ids=["kind", "api-version", "not-mapping", "yaml"],
)
def test_a_file_that_is_not_a_policy_test_is_reported(text: str, code: str) -> None:
    report = Report()
    assert parse_cases("tests/t.yaml", text, report) == []
    assert next(d.code for d in report).startswith(code)


def test_unknown_names_are_errors_never_silent_denies(tmp_path: Path) -> None:
    document = compile_project(VAULT, environment=None).document
    cases, _ = parse(
        "    - consumer: research-agnt\n"
        "      request: {capability: example-api/user, methods: [GET, POST], path: /v1/users}\n"
        "      expect: allow\n"
        "    - consumer: research-agent\n"
        "      request: {credential: exampel-api, path: /v1/users}\n"
        "      expect: allow\n"
    )
    report = Report()
    assert check_names(cases, document, report) == []  # type: ignore[arg-type]
    assert [str(d) for d in report] == [
        "tests/t.yaml:7:7: E-TEST-UNKNOWN-NAME: no capability named 'example-api/user' in the"
        " policy (did you mean 'example-api/users'?)",
        "tests/t.yaml:7:7: E-TEST-UNKNOWN-NAME: no consumer named 'research-agnt' in the policy"
        " (did you mean 'research-agent'?)",
        "tests/t.yaml:10:7: E-TEST-UNKNOWN-NAME: no credential named 'exampel-api' in the policy"
        " (did you mean 'example-api'?)",
    ]


def test_the_repo_s_own_tests_are_found_and_valid() -> None:
    assert policy_test_files(VAULT) == ["tests/research-agent.yaml"]
    report = Report()
    validate_test_files(VAULT, compile_project(VAULT, environment=None).document, report)
    assert list(report) == []
    assert len(load_cases(VAULT, Report())) > 10


def test_an_unreadable_test_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/bad.yaml").write_bytes(b"\xff\xfe")
    report = Report()
    assert load_cases(tmp_path, report) == []
    assert [d.code for d in report] == ["E-FILE-READ"]
    assert policy_test_files(tmp_path / "nowhere") == []
