"""vault.d/tests/ holds policy tests only: the compiled policy and its bundle are unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

from aivault_ops.bundle import SigningKey
from aivault_ops.compiled_project import compile_project, sign_bundle

VAULT = Path(__file__).resolve().parents[2] / "vault.d"


def test_the_tests_folder_changes_neither_policy_nor_bundle(tmp_path: Path) -> None:
    assert (VAULT / "tests").is_dir()
    without = tmp_path / "vault.d"
    shutil.copytree(VAULT, without, ignore=shutil.ignore_patterns("tests"))
    key = SigningKey.generate()
    bundles = []
    for root in (VAULT, without):
        compiled = compile_project(root, environment=None)
        assert compiled.validation.loaded.files.yaml_files == tuple(
            f for f in compiled.validation.loaded.files.yaml_files if not f.startswith("tests/")
        )
        bundles.append(
            sign_bundle(compiled, serial=1, revision="r", expires_at=None, signing_key=key)
        )
    assert bundles[0] == bundles[1]
