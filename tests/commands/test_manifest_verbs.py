"""`credential create|list|delete` and `capability create|list|delete` on a repo made by `init`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import InitProject, run_cli

CUSTOM = (
    "--auth",
    "header",
    "--header-name",
    "authorization",
    "--value-template",
    "Bearer {{secret}}",
    "--host",
    "api.example.com",
)


def _credential(project: InitProject, *extra: str) -> None:
    result = run_cli(
        "credential", "create", "my-api", "--provider", "my-api", *extra, cwd=project.workdir
    )
    assert result.returncode == 0, result.stderr


def test_credential_create_writes_provider_and_credential(project: InitProject) -> None:
    ref = ("--secret-ref", "vault:secret:EXAMPLE_API_KEY")
    result = run_cli(
        "credential", "create", "my-api", "--provider", "my-api", *ref, *CUSTOM,
        cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "wrote vault.d/providers/my-api.yaml",
        "wrote vault.d/credentials/my-api.yaml",
        "Next: aivault-ops validate vault.d, then aivault-ops apply vault.d --target …",
    ]
    credential = (project.root / "credentials" / "my-api.yaml").read_text()
    assert "secretRef: secrets/example-api.sops.yaml#EXAMPLE_API_KEY" in credential
    provider = (project.root / "providers" / "my-api.yaml").read_text()
    assert "header_name: authorization" in provider and "api.example.com" in provider
    assert run_cli("validate", cwd=project.workdir).returncode == 0


def test_a_registry_provider_gets_no_provider_file(project: InitProject) -> None:
    result = run_cli(
        "credential", "create", "oai", "--provider", "openai", "--dir", "vault.d",
        "--secret-ref", "EXAMPLE_API_KEY", cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (project.root / "providers" / "openai.yaml").exists()
    assert (project.root / "credentials" / "oai.yaml").is_file()


def test_existing_files_need_replace_and_are_left_alone(project: InitProject) -> None:
    path = project.root / "credentials" / "example-api.yaml"
    before = path.read_text()
    args = ("credential", "create", "example-api", "--provider", "example-api")
    result = run_cli(*args, cwd=project.workdir)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert "--replace" in result.stderr and path.read_text() == before
    result = run_cli(*args, "--secret-ref", "EXAMPLE_API_KEY", "--replace", cwd=project.workdir)
    assert result.returncode == 0, result.stderr


def test_new_problems_refuse_the_write_with_real_paths(project: InitProject) -> None:
    result = run_cli(
        "capability", "create", "my-api/x", "--credential", "nope", "--method", "GET",
        "--path", "/x", cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 1
    assert "vault.d/capabilities/my-api-x.yaml:6:15: E-CREDENTIAL-UNKNOWN" in result.stderr
    assert not (project.root / "capabilities" / "my-api-x.yaml").exists()


def test_problems_the_repo_already_had_do_not_refuse(project: InitProject) -> None:
    consumer = project.root / "consumers" / "agent.yaml"
    consumer.write_text(consumer.read_text().replace("example-api/*", "nothing/*"))
    assert run_cli("validate", cwd=project.workdir).returncode == 1
    _credential(project, "--secret-ref", "EXAMPLE_API_KEY", *CUSTOM)


def test_an_unknown_secret_name_is_a_clear_error(project: InitProject) -> None:
    result = run_cli(
        "credential", "create", "my-api", "--provider", "my-api",
        "--secret-ref", "EXAMPLE_API_KEI", *CUSTOM, cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no SOPS file of the policy repo holds EXAMPLE_API_KEI" in result.stderr
    assert "EXAMPLE_API_KEY" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--auth", "header", "--host", "a.example"), "--auth header needs --header-name"),
        (("--header-name", "x"), "strategy flags need --auth"),
        ((), "pass --auth STRATEGY and --host H"),
    ],
)
def test_usage_errors(project: InitProject, extra: tuple[str, ...], message: str) -> None:
    result = run_cli("credential", "create", "c", "--provider", "zz", *extra, cwd=project.workdir)
    assert result.returncode == 2 and message in result.stderr


def test_capability_create_list_and_delete(project: InitProject) -> None:
    _credential(project, "--secret-ref", "EXAMPLE_API_KEY", *CUSTOM)
    result = run_cli(
        "capability", "create", "my-api/users", "--provider", "my-api", "--credential", "my-api",
        "--method", "GET", "--method", "POST", "--path", "/v1/users", "--host", "api.example.com",
        cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote vault.d/capabilities/my-api-users.yaml\n")
    listed = run_cli("capability", "list", cwd=project.workdir).stdout.splitlines()
    assert "my-api/users\tmy-api\tvault.d/capabilities/my-api-users.yaml" in listed
    result = run_cli("credential", "delete", "my-api", cwd=project.workdir)
    assert result.returncode == 1 and "(Capability my-api/users)" in result.stderr
    assert run_cli("capability", "delete", "my-api/users", cwd=project.workdir).returncode == 0
    assert not (project.root / "capabilities" / "my-api-users.yaml").exists()
    assert run_cli("credential", "delete", "my-api", cwd=project.workdir).returncode == 0
    assert run_cli("validate", cwd=project.workdir).returncode == 0


def test_delete_refuses_a_capability_a_consumer_grant_needs(project: InitProject) -> None:
    args = ("capability", "delete", "example-api/read")
    result = run_cli(*args, cwd=project.workdir)
    assert result.returncode == 1
    assert "vault.d/consumers/agent.yaml (Consumer agent grants example-api/*)" in result.stderr
    assert run_cli(*args, "--force", cwd=project.workdir).returncode == 0
    assert not Path(project.root / "capabilities" / "example-api.yaml").exists()


def test_capability_provider_must_match_the_credential(project: InitProject) -> None:
    result = run_cli(
        "capability", "create", "zz/x", "--provider", "zz", "--credential", "example-api",
        "--method", "GET", "--path", "/x", cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 2 and "credential example-api is for example-api" in result.stderr
