"""The CI example runs as written against a repo made by `init` (GitHub-only steps skipped).

Its `run:` steps are executed with bash -e, as GitHub does, in a scratch
repository, with a real registry on loopback standing in for GHCR (the one
change to the scripts: `--plain-http`, which only a loopback registry
accepts); the install step is replaced by the package already installed here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from support.engines import Registry

from aivault_ops.bundle import PublicKey, verify_bundle
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import OciRepository

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "aivault-ops.yml"
PLAN_STEP = "Plan against what is published, with the decisions that flip (exit 2 means changes)"
POLICY_TEST = """apiVersion: aivault.dev/v1
kind: PolicyTest
metadata:
  name: agent
spec:
  cases:
    - consumer: agent
      request: {capability: example-api/read, paths: [/v1/items, /v1/items/7]}
      expect: allow
    - consumer: agent
      request: {capability: example-api/read, method: DELETE, path: /v1/items/7}
      expect: deny
      code: E-METHOD-NOT-ALLOWED
"""
_PINNED = re.compile(r"^aivault-ops @ git\+https://github\.com/[^/]+/aivault-ops@[0-9a-f]{40}$")


def _workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _shim(directory: Path) -> Path:
    directory.mkdir()
    script = directory / "aivault-ops"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m aivault_ops "$@"\n')
    script.chmod(0o755)
    return directory


def _run_step(step: dict[str, Any], cwd: Path, env: dict[str, str], secrets: dict[str, str]) -> str:
    step_env = {}
    for name, value in (step.get("env") or {}).items():
        text = re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: secrets[m.group(1)], str(value))
        text = re.sub(r"\$\{\{\s*github\.actor\s*\}\}", "ci-bot", text)
        assert "${{" not in text, name
        step_env[name] = text
    script = step["run"]
    assert "${{" not in script
    script = script.replace('"$BUNDLE_TARGET"', '"$BUNDLE_TARGET" --plain-http')
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env={**env, **step_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (step.get("name"), result.stdout, result.stderr)
    return result.stdout


def test_the_install_step_pins_a_git_ref() -> None:
    workflow = _workflow()
    assert _PINNED.match(workflow["env"]["AIVAULT_OPS_SOURCE"])
    for job in workflow["jobs"].values():
        installs = [s for s in job["steps"] if "pip install" in s.get("run", "")]
        assert [s["run"] for s in installs] == ['pip install "$AIVAULT_OPS_SOURCE"']


def test_the_run_steps_work_on_a_repo_made_by_init(tmp_path: Path, registry: Registry) -> None:
    home = tmp_path / "home"
    home.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PATH": f"{_shim(tmp_path / 'bin')}:{os.environ['PATH']}",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "SOPS_DISABLE_VERSION_CHECK": "1",
    }
    init = subprocess.run(
        ["aivault-ops", "init", "vault.d", "--identity-out", str(home / "id.txt"),
         "--signing-key-out", str(home / "signing.pem")],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    (repo / "vault.d/tests").mkdir()
    (repo / "vault.d/tests/agent.yaml").write_text(POLICY_TEST)
    workflow = _workflow()
    env.update({k: str(v) for k, v in workflow["env"].items()})
    assert env["BUNDLE_TARGET"] == "oci://ghcr.io/acme/aivault-policy"
    env["BUNDLE_TARGET"] = registry.url("ci/aivault-policy")
    secrets = {
        "AIVAULT_SIGNING_KEY": (home / "signing.pem").read_text(),
        "GITHUB_TOKEN": "ghs_not-a-real-token",
    }
    ran = []
    logs = {}
    for job_name in ("validate", "apply"):
        for step in workflow["jobs"][job_name]["steps"]:
            if "run" in step and "pip install" not in step["run"]:
                logs[step["name"]] = _run_step(step, repo, env, secrets)
                ran.append(step["name"])
    assert ran == [
        "Validate",
        "Policy tests (expected allow/deny per consumer and request)",
        PLAN_STEP,
        "Apply (signing key from the CI secret store, never written to the repo)",
    ]
    assert logs["Policy tests (expected allow/deny per consumer and request)"] == (
        "3 passed, 0 failed\n"
    )
    assert (
        "consumer agent: GET /v1/aivault-probe on example-api/read: deny -> allow"
        " (was E-NO-POLICY)  [probe]"
    ) in logs[PLAN_STEP]
    client = RegistryClient(parse_reference(env["BUNDLE_TARGET"]), plain_http=True)
    try:
        repository = OciRepository(client)
        assert [ref.serial for ref in repository.list()] == [1]
        data = repository.pull("latest").data
    finally:
        client.close()
    key = PublicKey.parse(
        init.stdout.split("Signing public key (trust it in runtimes): ")[1].split()[0]
    )
    verified = verify_bundle(data, trusted_keys=[key], now=datetime.now(UTC))
    assert verified.manifest.serial == 1 and verified.manifest.expires_at is not None
