"""`secrets` commands inside a policy repo made by `init`, run as a user runs them."""

from __future__ import annotations

from cli_support import InitProject, run_cli


def _env(project: InitProject) -> dict[str, str]:
    return {"SOPS_AGE_KEY_FILE": str(project.identity)}


def test_set_writes_where_the_credential_says_the_secret_lives(project: InitProject) -> None:
    manifest = project.root / "credentials" / "example-api.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "secrets/example-api.sops.yaml#EXAMPLE_API_KEY", "secrets/orders.sops.yaml#ORDERS_KEY"
        )
    )
    result = run_cli(
        "secrets", "set", "ORDERS_KEY", "--value", "sk-1", cwd=project.root, env=_env(project)
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "created ORDERS_KEY in secrets/orders.sops.yaml\n"
    validate = run_cli("validate", cwd=project.root)
    assert (validate.returncode, validate.stdout) == (0, "ok: . valid\n")


def test_set_from_a_subdirectory_uses_the_declared_file(project: InitProject) -> None:
    manifest = project.root / "credentials" / "example-api.yaml"
    manifest.write_text(
        manifest.read_text().replace("example-api.sops.yaml#EXAMPLE_API_KEY", "ops.sops.yaml#K")
    )
    args = ("secrets", "set", "K", "--value", "v")
    result = run_cli(*args, cwd=project.root / "credentials", env=_env(project))
    assert result.stdout == "created K in ../secrets/ops.sops.yaml\n", result.stderr
    assert (project.root / "secrets" / "ops.sops.yaml").is_file()


def test_two_declared_files_ask_for_file(project: InitProject) -> None:
    for name, file in (("one", "a"), ("two", "b")):
        (project.root / "credentials" / f"{name}.yaml").write_text(
            "apiVersion: aivault.dev/v1\nkind: Credential\n"
            f"metadata:\n  name: {name}\nspec:\n  provider: example-api\n"
            f"  secretRef: secrets/{file}.sops.yaml#SHARED\n"
        )
    result = run_cli("secrets", "set", "SHARED", "--value", "v", cwd=project.root)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: the manifests name more than one file for SHARED:"
        " secrets/a.sops.yaml, secrets/b.sops.yaml\n  hint: pass --file F\n"
    )


def test_a_ref_outside_the_project_is_not_followed(project: InitProject) -> None:
    manifest = project.root / "credentials" / "example-api.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "secrets/example-api.sops.yaml#EXAMPLE_API_KEY", "../outside.sops.yaml#OUT_KEY"
        )
    )
    result = run_cli("secrets", "set", "OUT_KEY", "--value", "v", cwd=project.root)
    assert result.stdout == "created OUT_KEY in secrets/out_key.sops.yaml\n", result.stderr
    assert not (project.workdir / "outside.sops.yaml").exists()


def test_list_warns_about_the_scaffold_placeholder(project: InitProject) -> None:
    result = run_cli("secrets", "list", cwd=project.root, env=_env(project))
    assert result.returncode == 0
    assert result.stdout == (
        f"EXAMPLE_API_KEY\tsecrets/example-api.sops.yaml\t{project.recipient}\n"
    )
    assert result.stderr == (
        "aivault-ops: warning: EXAMPLE_API_KEY in secrets/example-api.sops.yaml still holds"
        " the placeholder `init` wrote; set the real value with"
        " `aivault-ops secrets set EXAMPLE_API_KEY`\n"
    )
    assert "replace-me" not in result.stdout + result.stderr
    set_it = ("secrets", "set", "EXAMPLE_API_KEY", "--value", "sk-real")
    assert run_cli(*set_it, cwd=project.root, env=_env(project)).returncode == 0
    after = run_cli("secrets", "list", cwd=project.root, env=_env(project))
    assert (after.returncode, after.stderr) == (0, "")


def test_list_without_an_identity_lists_without_warning(project: InitProject) -> None:
    empty = {"HOME": str(project.workdir), "XDG_CONFIG_HOME": str(project.workdir / "none")}
    result = run_cli("secrets", "list", cwd=project.root, env=empty)
    assert (result.returncode, result.stderr) == (0, "")


def test_get_of_an_unknown_name_suggests_the_nearest(project: InitProject) -> None:
    result = run_cli("secrets", "get", "EXAMPLE_API_KY", "--reveal", cwd=project.root)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: no SOPS file below the current directory holds EXAMPLE_API_KY"
        " (did you mean 'EXAMPLE_API_KEY'?)\n"
    )
    named = run_cli(
        "secrets", "get", "EXAMPLE_API_KY", "--reveal", "--file",
        "secrets/example-api.sops.yaml", cwd=project.root, env=_env(project),
    )  # fmt: skip
    assert named.stderr == (
        "aivault-ops: error: secrets/example-api.sops.yaml: has no secret named EXAMPLE_API_KY"
        " (did you mean 'EXAMPLE_API_KEY'?)\n"
    )


def test_the_validate_hint_works_when_pasted_where_validate_ran(project: InitProject) -> None:
    (project.root / "credentials" / "openai.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Credential\n"
        "metadata:\n  name: openai\nspec:\n  provider: openai\n"
    )
    failed = run_cli("validate", cwd=project.workdir)
    assert failed.stdout.splitlines()[0] == (
        "vault.d/credentials/openai.yaml:6:13: E-SECRET-NOT-FOUND: no SOPS file in the project"
        " holds OPENAI_API_KEY; add it with `aivault-ops secrets set OPENAI_API_KEY` or set"
        " spec.secretRef"
    )
    hinted = ("secrets", "set", "OPENAI_API_KEY", "--value", "sk-1")
    result = run_cli(*hinted, cwd=project.workdir, env=_env(project))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "created OPENAI_API_KEY in vault.d/secrets/openai_api_key.sops.yaml\n"
    assert run_cli("validate", cwd=project.workdir).stdout == "ok: vault.d valid\n"


def test_set_with_file_finds_sops_yaml_above_the_file(project: InitProject) -> None:
    target = "vault.d/secrets/extra.sops.yaml"
    result = run_cli(
        "secrets", "set", "EXTRA", "--value", "v", "--file", target, cwd=project.workdir
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"created EXTRA in {target}\n"
