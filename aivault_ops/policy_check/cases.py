"""Policy test files (`tests/*.yaml`, `kind: PolicyTest`): read, check, expand.

Each case names a consumer, a request (a capability, or a credential for
the passthrough route; `method`/`methods`, `path`/`paths` with the query,
headers) and the expected `allow` or `deny`, optionally the expected code.
Lists of methods and paths expand to every method x path, so a table of
expectations stays short. Every problem is a positioned diagnostic; a case
naming a consumer, capability or credential the policy does not have is an
error, never a silent deny.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aivault_ops import schema_check
from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests.discovery import TESTS_DIR
from aivault_ops.manifests.loader import API_VERSION
from aivault_ops.manifests.model import ManifestSource
from aivault_ops.manifests.yaml_positions import YamlProblem, load_documents
from aivault_ops.policy_check.decide import Ask, Verdict
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.suggest import did_you_mean

KIND = "PolicyTest"
SUFFIXES = (".yaml", ".yml")
SCHEMA = "policytest"


@dataclass(frozen=True)
class PolicyCase:
    """One expanded case: where it is written, what is asked, what is expected."""

    location: Location
    name: str
    ask: Ask
    expect: Verdict
    code: str | None = None

    def describe(self) -> str:
        """`name: consumer c: GET /x on cap`."""
        label = f"{self.name}: " if self.name else ""
        return f"{label}consumer {self.ask.consumer}: {self.ask.describe()}"


@dataclass(frozen=True)
class _Written:
    """One case as written (before expansion), with its source for positions."""

    source: ManifestSource
    index: int
    data: Mapping[str, Any]

    def at(self, *path: str | int) -> Location:
        return self.source.at("spec", "cases", self.index, *path)


def policy_test_files(root: Path) -> list[str]:
    """Project-relative paths of the test files under `root/tests/`, sorted."""
    folder = root / TESTS_DIR
    if not folder.is_dir():
        return []
    found = (p for p in folder.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    return sorted(p.relative_to(root).as_posix() for p in found)


def load_cases(root: Path, report: Report) -> list[PolicyCase]:
    """Every case of every test file of the project (problems to `report`)."""
    cases: list[PolicyCase] = []
    for relative in policy_test_files(root):
        try:
            text = (root / relative).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            report.add(Location(relative), "E-FILE-READ", "cannot read the file as UTF-8 text")
            continue
        cases.extend(parse_cases(relative, text, report))
    return cases


def parse_cases(relative: str, text: str, report: Report) -> list[PolicyCase]:
    """The cases of one test file's text."""
    try:
        documents = list(load_documents(text))
    except YamlProblem as problem:
        report.add(Location(relative, problem.line, problem.column), problem.code, problem.message)
        return []
    cases: list[PolicyCase] = []
    for document in documents:
        if document.data is None:
            continue
        source = ManifestSource(relative, document.positions)
        for written in _written_cases(source, document.data, report):
            cases.extend(_expand(written, report))
    return cases


def _written_cases(source: ManifestSource, data: Any, report: Report) -> Iterator[_Written]:
    if not isinstance(data, dict):
        report.add(source.at(), "E-YAML-NOT-MAPPING", "a test file document must be a mapping")
        return
    if data.get("apiVersion") != API_VERSION:
        report.add(source.at("apiVersion"), "E-API-VERSION", f"apiVersion must be '{API_VERSION}'")
        return
    if data.get("kind") != KIND:
        report.add(source.at("kind"), "E-KIND-UNKNOWN", f"a file under tests/ must be kind {KIND}")
        return
    errors = schema_check.check(SCHEMA, data)
    for error in errors:
        location = source.at_key(*error.path) if error.at_key else source.at(*error.path)
        report.add(location, error.code, error.message)
    if not errors:
        for index, case in enumerate(data["spec"]["cases"]):
            yield _Written(source, index, case)


def _one_of(written: _Written, request: Mapping[str, Any], keys: tuple[str, str]) -> None:
    present = [key for key in keys if key in request]
    if len(present) != 1:
        what = "both" if present else "neither"
        raise _CaseProblem(
            written.at("request", *present[1:2]),
            f"request needs exactly one of {keys[0]} or {keys[1]} ({what} given)",
        )


class _CaseProblem(Exception):
    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def _expand(written: _Written, report: Report) -> list[PolicyCase]:
    """`methods` x `paths` of one written case."""
    data = written.data
    request = data["request"]
    try:
        _one_of(written, request, ("capability", "credential"))
        _one_of(written, request, ("path", "paths"))
        if "method" in request and "methods" in request:
            raise _CaseProblem(written.at("request", "methods"), "give method or methods, not both")
    except _CaseProblem as problem:
        report.add(problem.location, "E-TEST-INVALID", problem.message)
        return []
    methods = request.get("methods") or [request.get("method", "GET")]
    paths = request.get("paths") or [request["path"]]
    headers = tuple((str(k), str(v)) for k, v in (request.get("headers") or {}).items())
    return [
        PolicyCase(
            location=written.at(),
            name=str(data.get("name", "")),
            ask=Ask(
                consumer=data["consumer"],
                method=method,
                path=path,
                capability=request.get("capability"),
                credential=request.get("credential"),
                headers=headers,
            ),
            expect=data["expect"],
            code=data.get("code"),
        )
        for method in methods
        for path in paths
    ]


def check_names(
    cases: list[PolicyCase], document: PolicyDocument, report: Report
) -> list[PolicyCase]:
    """The cases whose consumer, capability and credential the policy knows; the others
    are reported (E-TEST-UNKNOWN-NAME), once per written case."""
    known: list[PolicyCase] = []
    reported: set[tuple[Location, str]] = set()
    for case in cases:
        problems = [
            f"no {what} named {name!r} in the policy{did_you_mean(name, sorted(names))}"
            for what, name, names in (
                ("consumer", case.ask.consumer, document.consumers),
                ("capability", case.ask.capability, document.capabilities),
                ("credential", case.ask.credential, document.credentials),
            )
            if name is not None and name not in names
        ]
        for problem in problems:
            if (case.location, problem) not in reported:
                reported.add((case.location, problem))
                report.add(case.location, "E-TEST-UNKNOWN-NAME", problem)
        if not problems:
            known.append(case)
    return known


def validate_test_files(root: Path, document: PolicyDocument | None, report: Report) -> None:
    """What `validate` checks of the test files: the schema, and (when the policy is
    valid) that every name a case uses exists."""
    cases = load_cases(root, report)
    if document is not None:
        check_names(cases, document, report)
