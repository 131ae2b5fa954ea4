from __future__ import annotations

import json

from cli_support import InitProject, run_cli


def test_list_from_the_project(project: InitProject) -> None:
    result = run_cli("capabilities", "list", cwd=project.workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "example-api/read  [example-api]  GET /v1/\n"


def test_describe_from_the_project_names_secrets_never_values(project: InitProject) -> None:
    result = run_cli("capabilities", "describe", "example-api/read", cwd=project.workdir)
    assert result.returncode == 0
    assert result.stdout == (
        "capability: example-api/read\n"
        "  credential: example-api\n"
        "  provider: example-api\n"
        "  source: manifest\n"
        "  methods: GET\n"
        "  pathPrefixes: /v1/\n"
        "  hosts: api.example.com\n"
        "  policy: (none)\n"
        "  auth: header\n"
        "  secrets: secrets/example-api.sops.yaml#EXAMPLE_API_KEY\n"
    )
    assert "replace-me" not in result.stdout


def test_registry_lists_all_283_capabilities(project: InitProject) -> None:
    result = run_cli("capabilities", "list", "--registry", "--json", cwd=project.workdir)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert len(document) == 283
    assert document["openai/chat-completions"] == {
        "provider": "openai",
        "methods": ["GET", "POST"],
        "pathPrefixes": ["/v1/chat/completions"],
        "hosts": ["api.openai.com"],
        "secretNames": ["OPENAI_API_KEY"],
    }


def test_from_a_bundle_needs_trust_and_verifies(project: InitProject) -> None:
    compiled = run_cli(
        "compile", "--out", "b.tar.gz", "--signing-key", project.signing_key, cwd=project.workdir
    )
    assert compiled.returncode == 0, compiled.stdout
    untrusted = run_cli("capabilities", "list", "--bundle", "b.tar.gz", cwd=project.workdir)
    assert untrusted.returncode == 2
    assert "--bundle needs --trust PUB" in untrusted.stderr
    trusted = run_cli(
        "capabilities",
        "list",
        "--bundle",
        "b.tar.gz",
        "--trust",
        project.public_key,
        cwd=project.workdir,
    )
    assert trusted.returncode == 0
    assert trusted.stdout == "example-api/read  [example-api]  GET /v1/\n"


def test_describe_unknown_capability(project: InitProject) -> None:
    result = run_cli("capabilities", "describe", "nope/x", cwd=project.workdir)
    assert result.returncode == 1
    assert result.stderr == (
        "aivault-ops: error: no capability 'nope/x'\n"
        "  hint: see `aivault-ops capabilities list` (or --registry for the built-in ones)\n"
    )
