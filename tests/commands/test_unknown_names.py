"""Unknown names in a repo made by `init` get the nearest known names, exact messages."""

from __future__ import annotations

from cli_support import InitProject, run_cli


def _edit(project: InitProject, relative: str, old: str, new: str) -> None:
    path = project.root / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _validate(project: InitProject, *args: str) -> list[str]:
    result = run_cli("validate", *args, cwd=project.root)
    assert result.returncode == 1, result.stdout
    return result.stdout.splitlines()


def test_unknown_credential_of_a_capability(project: InitProject) -> None:
    _edit(
        project,
        "capabilities/example-api.yaml",
        "credential: example-api",
        "credential: exampl-api",
    )
    assert _validate(project) == [
        "capabilities/example-api.yaml:6:15: E-CREDENTIAL-UNKNOWN: no valid Credential named"
        " 'exampl-api' (did you mean 'example-api'?)"
    ]


def test_a_grant_that_matches_nothing(project: InitProject) -> None:
    _edit(project, "consumers/agent.yaml", '["example-api/*"]', '["example-api/reed"]')
    assert _validate(project) == [
        "consumers/agent.yaml:8:18: E-CONSUMER-GRANT: grant 'example-api/reed' matches no"
        " capability of this project (did you mean 'example-api/read'?)"
    ]


def test_an_unknown_environment(project: InitProject) -> None:
    (project.root / "aivault-ops.yaml").write_text(
        (project.root / "aivault-ops.yaml").read_text()
        + "  environments:\n    prod: {}\n    staging: {}\n"
    )
    assert _validate(project, "--env", "prd") == [
        "aivault-ops.yaml:12:5: E-ENV-UNKNOWN: environment 'prd' is not defined in"
        " spec.environments (did you mean 'prod'?) (known: prod, staging)"
    ]


def test_capabilities_describe_an_unknown_name(project: InitProject) -> None:
    result = run_cli("capabilities", "describe", "example-api/raed", cwd=project.root)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: no capability 'example-api/raed' (did you mean 'example-api/read'?)\n"
        "  hint: see `aivault-ops capabilities list` (or --registry for the built-in ones)\n"
    )
