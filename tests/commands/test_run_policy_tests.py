"""`run_tests` (the `test` verb) and `validate` on policy test files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from policy_repo_support import VaultCopy, vault_copy

from aivault_ops.commands.compile import run_compile
from aivault_ops.commands.policy_tests import run_tests
from aivault_ops.commands.validate import run_validate
from aivault_ops.main import main


@pytest.fixture
def vault(tmp_path: Path) -> VaultCopy:
    return vault_copy(tmp_path)


def test_the_repo_s_own_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    vault = Path(__file__).resolve().parents[2] / "vault.d"
    assert run_tests(paths=[vault]) == 0
    assert capsys.readouterr().out.endswith(" passed, 0 failed\n")


def test_a_broken_expectation_fails_at_the_line_and_column_of_its_case(
    vault: VaultCopy, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = vault.root / "tests/research-agent.yaml"
    text = tests.read_text()
    tests.write_text(text.replace("paths: [/v1/usersX, /v1/admin, /v1/health]", "path: /v1/admin"))
    tests.write_text(tests.read_text().replace("code: E-PATH-NOT-ALLOWED", "code: E-FORBIDDEN"))
    line = text.splitlines().index("    - name: users capability stops at its prefix") + 1
    monkeypatch.chdir(vault.root.parent)
    assert run_tests(paths=[Path("vault.d")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"vault.d/tests/research-agent.yaml:{line}:7: E-TEST-FAILED: expected deny (E-FORBIDDEN),"
        " got deny (E-PATH-NOT-ALLOWED: path '/v1/admin' is outside the prefixes of capability"
        " 'example-api/users' (/v1/users)) [users capability stops at its prefix: consumer"
        " research-agent: GET /v1/admin on example-api/users]"
    )
    assert out[-1].endswith(" passed, 1 failed")


def test_json_lists_every_case(vault: VaultCopy, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tests(paths=[vault.root], as_json=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["failed"] == 0 and document["passed"] == len(document["cases"]) > 10
    assert document["cases"][0]["got"]["decision"] == "allow"


def test_against_a_published_bundle(
    vault: VaultCopy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle-3.tar.gz"
    args = {"repo": vault.root, "signing_key": vault.signing_key, "environment": None}
    assert run_compile(out=bundle, serial=3, revision="r3", **args) == 0
    (vault.root / "capabilities/example-api.yaml").write_text(
        (vault.root / "capabilities/example-api.yaml").read_text().replace("[GET, POST]", "[GET]")
    )
    capsys.readouterr()
    assert run_tests(paths=[vault.root]) == 1  # the repo changed: POST is gone
    assert run_tests(paths=[vault.root], bundle=bundle, trust=[vault.public_key]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" passed, 0 failed")


def test_unknown_names_fail_test_and_validate(
    vault: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = vault.root / "tests/typo.yaml"
    extra.write_text(
        "apiVersion: aivault.dev/v1\nkind: PolicyTest\nmetadata: {name: typo}\nspec:\n  cases:\n"
        "    - {consumer: research-agent, request: {capability: example-api/user, path: /v1},"
        " expect: deny}\n"
    )
    assert run_tests(paths=[vault.root]) == 1
    out = capsys.readouterr().out
    assert "tests/typo.yaml:6:7: E-TEST-UNKNOWN-NAME: no capability named 'example-api/user'" in out
    assert out.splitlines()[-1].endswith("0 failed, 1 error(s) in the test files")
    assert run_validate(paths=[vault.root], environment=None) == 1
    assert "tests/typo.yaml:6:7: E-TEST-UNKNOWN-NAME" in capsys.readouterr().out


def test_validate_checks_the_test_file_schema_even_when_the_policy_is_broken(
    vault: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    (vault.root / "tests/bad.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: PolicyTest\nmetadata: {name: bad}\nspec: {cases: []}\n"
    )
    (vault.root / "consumers/research-agent.yaml").write_text("kind: Nope\n")
    assert run_validate(paths=[vault.root], environment=None) == 1
    out = capsys.readouterr().out
    assert "tests/bad.yaml:4:" in out and "E-API-VERSION" in out


def test_files_outside_any_policy_repo_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    assert main(["test", str(tmp_path / "notes.yaml")]) == 0
    assert capsys.readouterr().out == "ok: no policy repo among the given files\n"
