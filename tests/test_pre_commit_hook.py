"""The hooks of `.pre-commit-hooks.yaml` under real pre-commit, as a user runs them.

Each test makes a fresh git repository holding a copy of the fixture project
as `vault.d/` (with a provider file in its own `registry/` and a policy test
file in `tests/`), next to other files, and a `.pre-commit-config.yaml` that
names this checkout at its committed HEAD (so work in progress in the tree
is not picked up) with all three hooks. `pre-commit run` clones it, builds a
virtualenv and pip-installs the package once into the module's
`PRE_COMMIT_HOME`; the other tests reuse that environment. The passing run
runs every hook, the failing ones `validate` and `test` alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "tests" / "fixtures" / "base"
HOOK_ID = "aivault-ops-validate"
TEST_HOOK_ID = "aivault-ops-test"
LINT_HOOK_ID = "aivault-ops-registry-lint"
POLICY_TEST = """apiVersion: aivault.dev/v1
kind: PolicyTest
metadata:
  name: agent
spec:
  cases:
    - consumer: agent
      request:
        capability: internal-api/users
        methods: [GET, POST]
        path: /v1/users/7
      expect: allow
    - consumer: agent
      request:
        capability: internal-api/users
        method: DELETE
        path: /v1/users/7
      expect: deny
"""
PRIVATE_PROVIDER = (
    REPO / "tests/fixtures/valid/private-registry-unused/registry/internal-tools.json"
)


@pytest.fixture(scope="module")
def pre_commit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("pre-commit-home")
    return {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PRE_COMMIT_COLOR": "never",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }


@pytest.fixture(scope="module")
def hook_ref() -> str:
    """The committed HEAD of this checkout; it must already hold the hook definition."""
    ref = _git(REPO, "rev-parse", "HEAD").strip()
    committed = _git(REPO, "ls-tree", "--name-only", ref, ".pre-commit-hooks.yaml")
    assert committed.strip() == ".pre-commit-hooks.yaml"
    return ref


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


def _policy_repo(root: Path, env: dict[str, str], ref: str) -> Path:
    """A git repository with the fixture project as `vault.d/` and a pre-commit config
    naming this checkout's hooks at `ref`, everything committed."""
    root.mkdir()
    (root / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {REPO}\n    rev: {ref}\n    hooks:\n"
        + "".join(f"      - id: {hook}\n" for hook in (HOOK_ID, LINT_HOOK_ID, TEST_HOOK_ID))
    )
    shutil.copytree(BASE, root / "vault.d")
    (root / "vault.d/registry").mkdir()
    shutil.copy(PRIVATE_PROVIDER, root / "vault.d/registry")
    (root / "vault.d/tests").mkdir()
    (root / "vault.d/tests/agent.yaml").write_text(POLICY_TEST)
    (root / "README.md").write_text("# policies\n")
    (root / "notes.txt").write_text("not matched by the hook's files pattern\n")
    _git(root, "init", "-q", "-b", "main", env=env)
    _git(root, "add", "-A", env=env)
    _git(root, "commit", "-q", "-m", "policies", env=env)
    return root


def _run_hooks(repo: Path, env: dict[str, str], *hook_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pre-commit", "run", *hook_id, "--all-files"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _hook_lines(output: str) -> list[str]:
    """The hook's own output: what pre-commit prints after `- exit code: N` and a blank line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("- exit code:"))
    return [line for line in lines[start + 1 :] if line.strip()]


def test_hook_passes_on_a_valid_policy_repo(
    tmp_path: Path, pre_commit_env: dict[str, str], hook_ref: str
) -> None:
    repo = _policy_repo(tmp_path / "good", pre_commit_env, hook_ref)
    result = _run_hooks(repo, pre_commit_env)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = [line for line in result.stdout.splitlines() if line.startswith("aivault-ops ")]
    assert sorted(line.split(".")[0] for line in ran) == [
        "aivault-ops registry lint",
        "aivault-ops test",
        "aivault-ops validate",
    ]
    assert all(line.endswith("Passed") for line in ran), result.stdout


def test_hook_fails_with_the_error_lines(
    tmp_path: Path, pre_commit_env: dict[str, str], hook_ref: str
) -> None:
    repo = _policy_repo(tmp_path / "bad", pre_commit_env, hook_ref)
    credential = repo / "vault.d/credentials/openai.yaml"
    credential.write_text(credential.read_text() + "  region: eu-west-1\n")
    secret = repo / "vault.d/secrets/internal.sops.yaml"
    lines = secret.read_text().splitlines(keepends=True)
    lines.insert(1, "DEBUG_TOKEN: plaintext-slipped-in\n")
    secret.write_text("".join(lines))
    _git(repo, "add", "-A", env=pre_commit_env)
    result = _run_hooks(repo, pre_commit_env, HOOK_ID)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- hook id: aivault-ops-validate" in result.stdout
    assert "- exit code: 1" in result.stdout
    lines = _hook_lines(result.stdout)
    assert "3 error(s)" in lines  # stderr: pre-commit merges it with stdout, order not fixed
    assert [line for line in lines if line != "3 error(s)"] == [
        "vault.d/consumers/agent.yaml:7:36: E-CONSUMER-GRANT: grant 'openai/chat-completions'"
        " matches no capability of this project (see `aivault-ops capabilities list`)",
        "vault.d/credentials/openai.yaml:8:3: E-SCHEMA-UNKNOWN-FIELD: unknown field 'region' in"
        " spec (allowed: alternative, auth, capabilities, description, hosts, provider,"
        " secretRef, secretRefs)",
        "vault.d/secrets/internal.sops.yaml:2:14: E-SOPS-PLAINTEXT: value of 'DEBUG_TOKEN' is not"
        " encrypted; remove it and set it again with `aivault-ops secrets set` (the plaintext"
        " may be in git history: rotate it)",
    ]
    assert "plaintext-slipped-in" not in result.stdout + result.stderr


def test_test_hook_fails_with_the_case_position(
    tmp_path: Path, pre_commit_env: dict[str, str], hook_ref: str
) -> None:
    repo = _policy_repo(tmp_path / "flip", pre_commit_env, hook_ref)
    tests = repo / "vault.d/tests/agent.yaml"
    tests.write_text(tests.read_text().replace("expect: deny", "expect: allow"))
    _git(repo, "add", "-A", env=pre_commit_env)
    result = _run_hooks(repo, pre_commit_env, TEST_HOOK_ID)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- hook id: aivault-ops-test" in result.stdout
    assert _hook_lines(result.stdout) == [
        "vault.d/tests/agent.yaml:13:7: E-TEST-FAILED: expected allow, got deny"
        " (E-METHOD-NOT-ALLOWED: method 'DELETE' is not allowed by capability"
        " 'internal-api/users' (allowed: GET, POST)) [consumer agent: DELETE /v1/users/7 on"
        " internal-api/users]",
        "2 passed, 1 failed",
    ]
