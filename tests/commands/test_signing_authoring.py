"""Authoring signed APIs: `credential create --auth hmac`, `capability create --operation`."""

from __future__ import annotations

import yaml
from cli_support import InitProject, run_cli

from aivault_ops.validation.run import validate_project

HMAC = (
    "--auth", "hmac", "--header-name", "X-Signature", "--value-template",
    "t={{timestamp}},v1={{signature}}", "--host", "api.pay.example.com",
    "--secret-ref", "vault:secret:EXAMPLE_API_KEY",
)  # fmt: skip


def _create(project: InitProject, *extra: str) -> tuple[int, str]:
    result = run_cli(
        "credential", "create", "pay", "--provider", "pay", *HMAC, *extra, cwd=project.workdir
    )
    return result.returncode, result.stderr


def test_a_new_hmac_provider_signs_the_request_and_validates(project: InitProject) -> None:
    assert _create(project, "--hmac-algorithm", "sha256") == (0, "")
    provider = yaml.safe_load((project.root / "providers/pay.yaml").read_text())
    assert provider["spec"]["auth"]["hmac"]["message"] == "request"
    assert validate_project(project.root).report.ok


def test_another_mode_is_written_when_asked(project: InitProject) -> None:
    assert _create(project, "--hmac-algorithm", "sha512", "--hmac-message", "canonical")[0] == 0
    provider = yaml.safe_load((project.root / "providers/pay.yaml").read_text())
    assert provider["spec"]["auth"]["hmac"]["message"] == "canonical"


def test_an_algorithm_the_runtime_refuses_is_refused_here(project: InitProject) -> None:
    code, stderr = _create(project, "--hmac-algorithm", "md5")
    assert code != 0
    assert "--hmac-algorithm md5: use sha256 or sha512" in stderr
    assert not (project.root / "providers/pay.yaml").exists()


def test_capability_create_writes_operations_and_copy_sources(project: InitProject) -> None:
    result = run_cli(
        "capability", "create", "example-api/ddb", "--credential", "example-api",
        "--method", "POST", "--path", "/", "--operation", "DynamoDB_20120810.GetItem",
        "--operation", "DynamoDB_20120810.Query", "--copy-source", "/bucket/in/",
        cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load((project.root / "capabilities/example-api-ddb.yaml").read_text())
    assert written["spec"]["allow"]["operations"] == [
        "DynamoDB_20120810.GetItem",
        "DynamoDB_20120810.Query",
    ]
    assert written["spec"]["allow"]["copySourcePrefixes"] == ["/bucket/in/"]
    assert validate_project(project.root).report.ok
