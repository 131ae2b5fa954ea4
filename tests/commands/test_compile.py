from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta

import pytest
from cli_support import InitProject, run_cli

from aivault_ops import sops
from aivault_ops.bundle import BundleError, PublicKey, verify_bundle

CANARY = "canary-7f3a9c-DO-NOT-LEAK-a1b2c3d4e5"


def _compile(project: InitProject, out: str, *extra: str) -> bytes:
    result = run_cli(
        "compile",
        project.root,
        "--out",
        out,
        "--signing-key",
        project.signing_key,
        *extra,
        cwd=project.workdir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (project.workdir / out).read_bytes()


def _verify(project: InitProject, data: bytes, now: datetime | None = None):  # type: ignore[no-untyped-def]
    key = PublicKey.parse(project.public_key)
    return verify_bundle(data, trusted_keys=[key], now=now or datetime.now(UTC))


def test_same_input_gives_identical_bytes_across_processes(project: InitProject) -> None:
    first = _compile(project, "a.tar.gz", "--revision", "r1")
    second = _compile(project, "b.tar.gz", "--revision", "r1")
    assert first == second


def test_file_creation_order_and_mtimes_do_not_matter(project: InitProject) -> None:
    first = _compile(project, "a.tar.gz", "--revision", "r1")
    copy = project.workdir / "copy"
    files = sorted(p for p in project.root.rglob("*") if p.is_file())
    for path in reversed(files):  # created in the opposite order, with new mtimes
        target = copy / path.relative_to(project.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    result = run_cli(
        "compile",
        copy,
        "--out",
        "c.tar.gz",
        "--signing-key",
        project.signing_key,
        "--revision",
        "r1",
        cwd=project.workdir,
    )
    assert result.returncode == 0, result.stdout
    assert (project.workdir / "c.tar.gz").read_bytes() == first


def test_revision_defaults_to_git_head(project: InitProject) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project.workdir, check=True)
    subprocess.run([*git, "add", "vault.d"], cwd=project.workdir, check=True)
    subprocess.run([*git, "commit", "-qm", "policy"], cwd=project.workdir, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=project.workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    verified = _verify(project, _compile(project, "a.tar.gz", "--serial", "7"))
    assert verified.manifest.revision == head
    assert verified.manifest.serial == 7
    (project.root / "consumers" / "agent.yaml").write_text(
        (project.root / "consumers" / "agent.yaml").read_text() + "# edited\n"
    )
    assert _verify(project, _compile(project, "b.tar.gz")).manifest.revision == f"{head}+dirty"


def test_expires_in_sets_expires_at_and_verification_refuses_it_later(project: InitProject) -> None:
    data = _compile(project, "a.tar.gz", "--expires-in", "2h")
    verified = _verify(project, data)
    assert verified.manifest.expires_at is not None
    remaining = verified.manifest.expires_at - datetime.now(UTC)
    assert timedelta(hours=1) < remaining <= timedelta(hours=2)
    with pytest.raises(BundleError) as refused:
        _verify(project, data, now=datetime.now(UTC) + timedelta(hours=3))
    assert refused.value.code == "E-BUNDLE-EXPIRED"


def test_bad_duration_is_a_usage_error(project: InitProject) -> None:
    result = run_cli(
        "compile",
        project.root,
        "--out",
        "x",
        "--signing-key",
        project.signing_key,
        "--expires-in",
        "soon",
        cwd=project.workdir,
    )
    assert result.returncode == 2
    assert "invalid duration 'soon'" in result.stderr


def test_no_secret_value_token_or_private_key_in_the_bundle(project: InitProject) -> None:
    identities = sops.load_identities(project.identity, environ={})
    secret_file = project.root / "secrets" / "example-api.sops.yaml"
    config = sops.SopsConfig.find(secret_file.parent)
    sops.set_value(secret_file, "EXAMPLE_API_KEY", CANARY, config, identities)
    data = _compile(project, "a.tar.gz")
    forbidden = [
        CANARY,
        project.token,
        project.identity.read_text().split("AGE-SECRET-KEY-")[1].strip(),
        "PRIVATE KEY",
        *project.signing_key.read_text().splitlines()[1:-1],
    ]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            assert extracted is not None
            content = extracted.read().decode("utf-8")
            for needle in forbidden:
                assert needle not in content, (member.name, needle[:8])
    assert CANARY.encode() not in data
    verified = _verify(project, data)
    assert (
        sops.decrypt_bytes(
            verified.files["secrets/example-api.sops.yaml"],
            format="yaml",
            identities=identities,
            source_name="bundle",
        )
        .secrets()["EXAMPLE_API_KEY"]
        .reveal()
        == CANARY
    )


def test_policy_json_is_canonical_and_complete(project: InitProject) -> None:
    verified = _verify(project, _compile(project, "a.tar.gz"))
    import json

    assert (
        verified.policy_bytes
        == json.dumps(
            verified.policy, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert verified.policy["credentials"]["example-api"]["secrets"] == {
        "secret": {"file": "secrets/example-api.sops.yaml", "name": "EXAMPLE_API_KEY"}
    }
    assert list(verified.files) == ["secrets/example-api.sops.yaml"]
    assert (
        verified.files["secrets/example-api.sops.yaml"]
        == (project.root / "secrets" / "example-api.sops.yaml").read_bytes()
    )


def test_compile_refuses_an_invalid_project(project: InitProject) -> None:
    (project.root / "consumers" / "agent.yaml").unlink()
    shutil.copy(
        project.root / "credentials" / "example-api.yaml", project.root / "credentials" / "dup.yaml"
    )
    result = run_cli(
        "compile",
        project.root,
        "--out",
        "a.tar.gz",
        "--signing-key",
        project.signing_key,
        cwd=project.workdir,
    )
    assert result.returncode == 1
    assert result.stdout == (
        "vault.d/credentials/example-api.yaml:4:9: E-DUPLICATE-NAME:"
        " Credential 'example-api' is defined more than once\n"
    )
    assert result.stderr == "aivault-ops: error: 1 validation error(s)\n"
    assert not (project.workdir / "a.tar.gz").exists()
