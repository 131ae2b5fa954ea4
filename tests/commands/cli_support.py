"""Running the CLI as a user does, and a real policy repo made by `aivault-ops init`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InitProject:
    workdir: Path
    root: Path
    identity: Path
    signing_key: Path
    token: str
    recipient: str
    public_key: str


def run_cli(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m aivault_ops …` as a user runs it."""
    merged = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aivault_ops", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=merged,
        timeout=120,
    )


def make_project(workdir: Path) -> InitProject:
    workdir.mkdir(parents=True, exist_ok=True)
    result = run_cli(
        "init",
        "vault.d",
        "--identity-out",
        "keys/id.txt",
        "--signing-key-out",
        "keys/sk.pem",
        "--name",
        "acme",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    return InitProject(
        workdir=workdir,
        root=workdir / "vault.d",
        identity=workdir / "keys/id.txt",
        signing_key=workdir / "keys/sk.pem",
        token=fields["Consumer 'agent' token (shown once, store it now)"],
        recipient=fields["Runtime age recipient"],
        public_key=fields["Signing public key (trust it in runtimes)"],
    )
