"""A real policy repo made in-process by `run_init`, for tests that call the command
functions directly (import the `repo` fixture by name)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from cli_support import InitProject

from aivault_ops.commands.init import run_init


def init_repo(workdir: Path, *, signing: bool = True, name: str = "acme") -> InitProject:
    """`aivault-ops init vault.d` in `workdir`, keys in `workdir/keys`, called in-process."""
    (workdir / "keys").mkdir(parents=True, exist_ok=True)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = run_init(
            directory=workdir / "vault.d",
            identity_out=workdir / "keys/id.txt",
            signing_key_out=workdir / "keys/sk.pem" if signing else None,
            name=name,
        )
    assert code == 0
    lines = output.getvalue().splitlines()
    fields = dict(line.split(": ", 1) for line in lines if ": " in line)
    return InitProject(
        workdir=workdir,
        root=workdir / "vault.d",
        identity=workdir / "keys/id.txt",
        signing_key=workdir / "keys/sk.pem",
        token=fields["Consumer 'agent' token (shown once, store it now)"],
        recipient=fields["Runtime age recipient"],
        public_key=fields.get("Signing public key (trust it in runtimes)", ""),
    )


@pytest.fixture
def repo(tmp_path: Path) -> InitProject:
    """A fresh repo whose Project trusts `keys/sk.pem`."""
    return init_repo(tmp_path)
