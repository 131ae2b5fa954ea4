from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cli_support import InitProject, run_cli

from aivault_ops import sops
from aivault_ops.bundle import PublicKey, verify_bundle


def _apply(project: InitProject, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "apply",
        project.root,
        "--target",
        "bundles",
        "--signing-key",
        project.signing_key,
        "--revision",
        "r",
        *extra,
        cwd=project.workdir,
    )


def _bundles(project: InitProject) -> list[str]:
    return sorted(p.name for p in (project.workdir / "bundles").glob("bundle-*.tar.gz"))


def _serial(project: InitProject, name: str) -> int:
    data = (project.workdir / "bundles" / name).read_bytes()
    key = PublicKey.parse(project.public_key)
    return verify_bundle(data, trusted_keys=[key], now=datetime.now(UTC)).manifest.serial


def _always_apply_command(project: InitProject) -> list[str]:
    return [sys.executable, "-m", "aivault_ops", "apply", str(project.root), "--target", "bundles",
            "--signing-key", str(project.signing_key), "--always", "--revision", "r"]  # fmt: skip


def _allow_post(project: InitProject) -> None:
    path = project.root / "capabilities" / "example-api.yaml"
    path.write_text(path.read_text().replace("methods: [GET]", "methods: [GET, POST]"))


def test_first_apply_publishes_serial_one_with_the_plan(project: InitProject) -> None:
    result = _apply(project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Comparing against: nothing published yet"
    assert "+ capability example-api/read" in lines
    assert lines[-1] == f"Published {Path('bundles') / 'bundle-1.tar.gz'} (serial 1, revision r)"
    assert _bundles(project) == ["bundle-1.tar.gz"]
    assert _serial(project, "bundle-1.tar.gz") == 1


def test_serial_increments_and_no_change_publishes_nothing(project: InitProject) -> None:
    assert _apply(project).returncode == 0
    unchanged = _apply(project)
    assert unchanged.returncode == 0
    assert unchanged.stdout.splitlines()[-2:] == ["No changes.", "Nothing to publish."]
    _allow_post(project)
    changed = _apply(project)
    assert changed.returncode == 0, changed.stdout
    assert "~ capability example-api/read: allow.methods [GET] → [GET, POST]" in changed.stdout
    assert _bundles(project) == ["bundle-1.tar.gz", "bundle-2.tar.gz"]
    assert _serial(project, "bundle-2.tar.gz") == 2


def test_dry_run_publishes_nothing(project: InitProject) -> None:
    result = _apply(project, "--dry-run")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "Dry run: would publish bundle-1.tar.gz"
    assert _bundles(project) == []


def test_concurrent_applies_never_share_a_serial(project: InitProject) -> None:
    command = _always_apply_command(project)
    for _ in range(3):
        processes = [
            subprocess.Popen(
                command,
                cwd=project.workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
    names = _bundles(project)
    assert names == [f"bundle-{n}.tar.gz" for n in range(1, 7)]
    assert sorted(_serial(project, name) for name in names) == list(range(1, 7))


def test_kill_during_apply_never_leaves_a_partial_bundle(project: InitProject) -> None:
    big = project.root / "secrets" / "big.sops.json"
    config = sops.SopsConfig.find(big.parent)
    sops.set_value(big, "BULK", os.urandom(6_000_000).hex(), config, None)
    command = _always_apply_command(project)
    for delay in (0.3, 0.8, 1.5, 2.5):
        process = subprocess.Popen(
            command, cwd=project.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)  # where the kill lands varies; the invariant below holds wherever it does
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        for name in _bundles(project):
            assert _serial(project, name) == int(name.removeprefix("bundle-").split(".")[0])
    after = _apply(project, "--always")
    assert after.returncode == 0, after.stdout + after.stderr
    assert _serial(project, _bundles(project)[-1]) == len(_bundles(project))


def _other_key(project: InitProject) -> Path:
    other = project.workdir / "keys" / "other.pem"
    made = run_cli("keys", "signing", "--out", other, cwd=project.workdir)
    assert made.returncode == 0, made.stderr
    return other


def test_apply_refuses_a_signing_key_the_project_does_not_trust(project: InitProject) -> None:
    other = _other_key(project)
    public = run_cli("keys", "public", other, cwd=project.workdir).stdout.strip()
    keyid = PublicKey.parse(public).keyid
    result = run_cli(
        "apply", project.root, "--target", "bundles", "--signing-key", other, cwd=project.workdir
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"aivault-ops: error: E-SIGNING-KEY-UNTRUSTED: {other}: signing key {keyid} is not in"
        " the Project's spec.trustedSigningKeys; runtimes that trust those keys would refuse"
        f" the bundle\n  hint: sign with a trusted key, or add `{public}` to"
        f" spec.trustedSigningKeys (`aivault-ops keys public {other}` prints it)\n"
    )
    assert not (project.workdir / "bundles").exists()


def _publish_untrusted(project: InitProject, serial: int) -> None:
    other = _other_key(project)
    out = project.workdir / "bundles" / f"bundle-{serial}.tar.gz"
    out.parent.mkdir(exist_ok=True)
    result = run_cli(
        "compile", project.root, "--out", out, "--signing-key", other, "--serial", str(serial),
        "--revision", "rogue", cwd=project.workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_an_unverifiable_newest_bundle_is_not_the_base(project: InitProject) -> None:
    assert _apply(project).returncode == 0
    _publish_untrusted(project, 2)
    plan = run_cli("plan", project.root, "--target", "bundles", cwd=project.workdir)
    assert plan.returncode == 2
    assert plan.stdout.splitlines()[0] == "Comparing against: bundle-1.tar.gz (revision r)"
    assert plan.stderr.startswith(
        "warning: bundle-2.tar.gz does not verify with the trusted keys (E-BUNDLE-UNTRUSTED: "
    )
    assert plan.stderr.endswith(
        "; it is not compared against, and apply publishes a bundle above it\n"
    )
    result = _apply(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"Published {Path('bundles') / 'bundle-3.tar.gz'} (serial 3, revision r)"
    )
    assert _serial(project, "bundle-3.tar.gz") == 3
    assert _apply(project).stdout.splitlines()[-1] == "Nothing to publish."


def test_only_unverifiable_bundles_compare_against_nothing(project: InitProject) -> None:
    _publish_untrusted(project, 5)
    result = _apply(project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Comparing against: nothing verified published yet"
    assert "+ capability example-api/read" in lines
    assert _serial(project, "bundle-6.tar.gz") == 6
