from __future__ import annotations

import json

from cli_support import InitProject, run_cli

from aivault_ops import sops

CANARY = "canary-plan-5d1e-DO-NOT-LEAK"


def _plan(project: InitProject, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "plan",
        project.root,
        "--target",
        "bundles",
        "--trust",
        project.public_key,
        *extra,
        cwd=project.workdir,
    )


def _publish(project: InitProject) -> None:
    result = run_cli(
        "apply",
        project.root,
        "--target",
        "bundles",
        "--signing-key",
        project.signing_key,
        "--revision",
        "r1",
        cwd=project.workdir,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_plan_against_nothing_lists_every_addition_and_exits_2(project: InitProject) -> None:
    result = _plan(project)
    assert result.returncode == 2
    assert result.stdout == (
        "Comparing against: nothing published yet\n"
        "+ provider example-api\n"
        "+ credential example-api\n"
        "+ capability example-api/read\n"
        "+ consumer agent\n"
        "+ secret secrets/example-api.sops.yaml\n"
        "Plan: 5 to add, 0 to change, 0 to remove.\n"
    )


def test_plan_without_changes_exits_0(project: InitProject) -> None:
    _publish(project)
    result = _plan(project)
    assert result.returncode == 0
    assert result.stdout == "Comparing against: bundle-1.tar.gz (revision r1)\nNo changes.\n"
    assert result.stderr == ""


def test_plan_shows_changed_fields_additions_and_removals(project: InitProject) -> None:
    _publish(project)
    capability = project.root / "capabilities" / "example-api.yaml"
    capability.write_text(
        capability.read_text().replace("methods: [GET]", "methods: [GET, POST]")
        + "  policy:\n    timeoutMs: 5000\n"
        + "---\napiVersion: aivault.dev/v1\nkind: Capability\n"
        "metadata:\n  name: example-api/write\n"
        "spec:\n  credential: example-api\n"
        "  allow:\n    methods: [PUT]\n    pathPrefixes: [/v1/items]\n"
    )
    consumer = project.root / "consumers" / "agent.yaml"
    consumer.write_text(consumer.read_text().replace('["example-api/*"]', '["example-api/read"]'))
    result = _plan(project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.splitlines()[1:] == [
        "~ capability example-api/read: allow.methods [GET] → [GET, POST];"
        " policy.timeoutMs (unset) → 5000",
        "+ capability example-api/write",
        "~ consumer agent: capabilities [example-api/*] → [example-api/read]",
        "Plan: 1 to add, 2 to change, 0 to remove.",
    ]


def test_plan_shows_removal(project: InitProject) -> None:
    _publish(project)
    (project.root / "consumers" / "agent.yaml").unlink()
    result = _plan(project)
    assert result.returncode == 2
    assert "- consumer agent" in result.stdout.splitlines()


def test_secret_change_shows_digest_never_value(project: InitProject) -> None:
    _publish(project)
    identities = sops.load_identities(project.identity, environ={})
    secret_file = project.root / "secrets" / "example-api.sops.yaml"
    sops.set_value(
        secret_file, "EXAMPLE_API_KEY", CANARY, sops.SopsConfig.find(secret_file.parent), identities
    )
    result = _plan(project)
    assert result.returncode == 2
    changed = [line for line in result.stdout.splitlines() if line.startswith("~")]
    assert len(changed) == 1
    assert changed[0].startswith("~ secret secrets/example-api.sops.yaml: content ")
    as_json = _plan(project, "--json")
    for output in (result.stdout, result.stderr, as_json.stdout, as_json.stderr):
        assert CANARY not in output


def test_plan_json(project: InitProject) -> None:
    _publish(project)
    (project.root / "consumers" / "agent.yaml").unlink()
    result = _plan(project, "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document == {
        "base": {"bundle": "bundle-1.tar.gz", "serial": 1, "revision": "r1", "verified": True},
        "changes": [{"op": "-", "kind": "consumer", "name": "agent", "fields": []}],
    }


def test_plan_warns_when_the_base_cannot_be_verified(project: InitProject) -> None:
    _publish(project)
    result = run_cli("plan", project.root, "--target", "bundles", cwd=project.workdir)
    project_keys_trusted = "trustedSigningKeys" in (project.root / "aivault-ops.yaml").read_text()
    assert project_keys_trusted  # init put the signing key in the Project, so it verifies
    assert result.returncode == 0 and result.stderr == ""
    (project.root / "aivault-ops.yaml").write_text(
        "\n".join(
            line
            for line in (project.root / "aivault-ops.yaml").read_text().splitlines()
            if "trustedSigningKeys" not in line and "ed25519:" not in line
        )
        + "\n"
    )
    unverified = run_cli("plan", project.root, "--target", "bundles", cwd=project.workdir)
    assert unverified.returncode == 0
    assert unverified.stderr.startswith(
        "warning: the newest bundle could not be verified (E-BUNDLE-UNTRUSTED:"
    )


def test_plan_json_lists_bundles_that_do_not_verify(project: InitProject) -> None:
    _publish(project)
    (project.workdir / "bundles" / "bundle-1.tar.gz").rename(
        project.workdir / "bundles" / "bundle-4.tar.gz"
    )
    (project.workdir / "bundles" / "bundle-4.tar.gz").write_bytes(b"not a bundle")
    result = _plan(project, "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["base"] is None
    assert [entry["bundle"] for entry in document["unverifiable"]] == ["bundle-4.tar.gz"]
    assert document["unverifiable"][0]["reason"].startswith("E-BUNDLE-ARCHIVE: ")
