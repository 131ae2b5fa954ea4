"""`aivault-ops registry new`: promote a custom provider into the repo's registry/ folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_support import InitProject

from aivault_ops.errors import UsageError
from aivault_ops.main import main
from aivault_ops.validation.run import validate_project

CANARY = "sk-canary-registry-new-0123456789"


def _custom_provider(project: InitProject) -> None:
    """aivault's custom-provider steps: a secret, a custom provider's credential, a capability."""
    root = str(project.root)
    created = subprocess.run(
        [sys.executable, "-m", "aivault_ops", "secrets", "create", "--name", "MY_CUSTOM_KEY"],
        cwd=root, input=CANARY, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert main([
        "credential", "create", "my-api", "--provider", "my-api", "--secret-ref",
        "vault:secret:MY_CUSTOM_KEY", "--auth", "header", "--header-name", "authorization",
        "--value-template", "Bearer {{secret}}", "--host", "api.example.com", "--dir", root,
    ]) == 0  # fmt: skip
    assert main([
        "capability", "create", "my-api/users", "--provider", "my-api", "--credential",
        "my-api", "--method", "GET", "--path", "/v1/users", "--host", "api.example.com",
        "--dir", root,
    ]) == 0  # fmt: skip


def test_a_custom_provider_is_promoted_and_its_secret_pinned(
    project: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project.root
    _custom_provider(project)
    capsys.readouterr()
    assert main(["registry", "new", "my-api", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "removed " in out and "registry/my-api.json" in out and CANARY not in out
    assert not (root / "providers/my-api.yaml").exists()
    document = json.loads((root / "registry/my-api.json").read_text())
    assert document["vaultSecrets"] == {"MY_CUSTOM_KEY": "secret"}
    assert [c["id"] for c in document["capabilities"]] == ["my-api/users"]
    assert validate_project(root).report.ok
    assert main(["registry", "lint", "--dir", str(root)]) == 0
    # pinning: a credential of another provider may no longer use the key
    (root / "credentials/thief.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Credential\nmetadata:\n  name: thief\nspec:\n"
        "  provider: example-api\n  secretRef: secrets/my_custom_key.sops.yaml#MY_CUSTOM_KEY\n"
    )
    assert "E-SECRET-PINNED" in {d.code for d in validate_project(root).report}


def test_an_existing_file_is_kept_without_replace(
    project: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project.root
    _custom_provider(project)
    (root / "registry").mkdir()
    (root / "registry/my-api.json").write_text("{}\n")
    capsys.readouterr()
    assert main(["registry", "new", "my-api", "--dir", str(root)]) == 1
    assert "registry/my-api.json already exists" in capsys.readouterr().err
    assert (root / "registry/my-api.json").read_text() == "{}\n"
    assert (root / "providers/my-api.yaml").exists()


def test_it_says_what_is_missing(project: InitProject) -> None:
    from aivault_ops.commands.registry import run_registry_new

    with pytest.raises(UsageError, match="no Provider nothing-here"):
        run_registry_new(provider="nothing-here", directory=project.root)
    with pytest.raises(UsageError, match="--auth STRATEGY and --host H together"):
        run_registry_new(provider="x", auth="basic", directory=project.root)
    for path in (project.root / "capabilities").glob("*.yaml"):
        path.unlink()
    with pytest.raises(UsageError, match="no Capability manifest of a example-api credential"):
        run_registry_new(provider="example-api", directory=project.root)
