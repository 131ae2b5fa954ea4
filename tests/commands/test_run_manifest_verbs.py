"""The typed functions behind `credential`/`capability create|list|delete`, in-process."""

from __future__ import annotations

import json

import pytest
from cli_support import InitProject

from aivault_ops.authoring.auth_flags import AuthFlags
from aivault_ops.commands import capability, credential
from aivault_ops.commands._manifest_admin import run_delete, run_list
from aivault_ops.errors import AivaultError, UsageError

HEADER = AuthFlags(header_name="authorization", value_template="Bearer {{secret}}")


def _create_my_api(project: InitProject, **extra: object) -> None:
    options: dict[str, object] = {
        "name": "my-api",
        "provider": "my-api",
        "secret_ref": "EXAMPLE_API_KEY",
        "auth": "header",
        "flags": HEADER,
        "hosts": ["api.example.com"],
        "directory": project.root,
        **extra,
    }
    assert credential.run_create(**options) == 0  # type: ignore[arg-type]


def test_create_then_a_second_credential_reuses_the_provider(
    project: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_my_api(project)
    provider = project.root / "providers" / "my-api.yaml"
    written = provider.read_text()
    capsys.readouterr()
    _create_my_api(project, name="my-api-2")
    out = capsys.readouterr().out
    assert "providers/my-api.yaml" not in out and "credentials/my-api-2.yaml" in out
    credential.run_create(
        name="my-api-3", provider="my-api", secret_ref="EXAMPLE_API_KEY", directory=project.root
    )
    assert provider.read_text() == written


def test_a_different_provider_needs_replace(project: InitProject) -> None:
    _create_my_api(project)
    with pytest.raises(AivaultError, match=r"providers/my-api\.yaml already exists"):
        _create_my_api(project, name="other", hosts=["b.example.com"])
    _create_my_api(project, name="other", hosts=["b.example.com"], replace=True)
    assert "b.example.com" in (project.root / "providers" / "my-api.yaml").read_text()


def test_a_file_ref_is_written_as_given(project: InitProject) -> None:
    ref = "secrets/example-api.sops.yaml#EXAMPLE_API_KEY"
    _create_my_api(project, secret_ref=ref)
    assert f"secretRef: {ref}" in (project.root / "credentials" / "my-api.yaml").read_text()


def test_usage_errors_in_process(project: InitProject) -> None:
    with pytest.raises(UsageError, match="needs --auth and --host"):
        _create_my_api(project, hosts=[])
    with pytest.raises(UsageError, match="needs --auth and --host"):
        _create_my_api(project, auth=None, flags=None)


def test_capability_create_list_and_delete_in_process(
    project: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_my_api(project)
    assert (
        capability.run_create(
            name="my-api/users",
            provider="my-api",
            credential="my-api",
            methods=["get"],
            path_prefixes=["/v1/users"],
            directory=project.root,
        )
        == 0
    )
    capsys.readouterr()
    assert run_list(kind="Capability", directory=project.root, as_json=True) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name": "my-api/users", "provider": "my-api"}.items() <= rows[1].items()
    assert rows[1]["file"].endswith("capabilities/my-api-users.yaml")
    with pytest.raises(AivaultError, match="still referred to"):
        run_delete(kind="Credential", name="my-api", directory=project.root)
    assert run_delete(kind="Credential", name="my-api", force=True, directory=project.root) == 0
    assert not (project.root / "credentials" / "my-api.yaml").exists()


def test_list_of_nothing_and_delete_of_an_unknown_name(
    project: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "credentials" / "example-api.yaml").unlink()
    assert run_list(kind="Credential", directory=project.root) == 0
    assert capsys.readouterr().out.startswith("no Credential manifests in ")
    with pytest.raises(AivaultError, match="did you mean 'example-api/read'"):
        run_delete(kind="Capability", name="example-api/reed", directory=project.root)


def test_a_file_with_several_manifests_is_not_deleted(project: InitProject) -> None:
    capabilities = project.root / "capabilities" / "example-api.yaml"
    text = capabilities.read_text()
    capabilities.write_text(text + "---\n" + text.replace("example-api/read", "example-api/more"))
    with pytest.raises(AivaultError, match="holds other manifests too"):
        run_delete(kind="Capability", name="example-api/more", force=True, directory=project.root)
    assert capabilities.read_text().count("kind: Capability") == 2


def test_capability_name_must_start_with_the_provider(project: InitProject) -> None:
    with pytest.raises(UsageError, match="is named example-api/NAME"):
        capability.run_create(
            name="other/x",
            provider="example-api",
            credential="example-api",
            methods=["GET"],
            path_prefixes=["/x"],
            directory=project.root,
        )


def test_new_problems_are_printed_and_nothing_is_written(
    project: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AivaultError, match=r"would add 1 problem\(s\)"):
        capability.run_create(
            name="example-api/x",
            credential="nope",
            methods=["GET"],
            path_prefixes=["/x"],
            directory=project.root,
        )
    assert "capabilities/example-api-x.yaml:6:15: E-CREDENTIAL-UNKNOWN" in capsys.readouterr().err
    assert not (project.root / "capabilities" / "example-api-x.yaml").exists()
