"""A copy of the repo's own vault.d (with its tests/) and a signing key, for check/test/plan."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from aivault_ops.commands.keys import run_signing

VAULT = Path(__file__).resolve().parents[2] / "vault.d"


@dataclass(frozen=True)
class VaultCopy:
    root: Path
    signing_key: Path
    public_key: str


def vault_copy(tmp_path: Path) -> VaultCopy:
    root = tmp_path / "vault.d"
    shutil.copytree(VAULT, root)
    key = tmp_path / "sk.pem"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert run_signing(out=key) == 0
    return VaultCopy(root, key, out.getvalue().strip())
