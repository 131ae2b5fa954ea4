"""Replacing a file whole: permissions, links and leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aivault_ops.atomic_write import replace_file


def test_the_whole_file_is_replaced_and_private_by_default(tmp_path: Path) -> None:
    target = tmp_path / "f"
    replace_file(target, b"one")
    replace_file(target, b"two", sync_dir=True)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["f"]


def test_an_existing_file_keeps_its_mode_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o640)
    replace_file(target, b"new", mode=0o600, keep_mode=True)
    assert target.stat().st_mode & 0o777 == 0o640
    replace_file(tmp_path / "g", b"new", mode=0o644, keep_mode=True)
    assert (tmp_path / "g").stat().st_mode & 0o777 == 0o644


def test_a_link_at_the_target_is_replaced_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (tmp_path / "f").symlink_to(victim)
    replace_file(tmp_path / "f", b"new")
    assert victim.read_bytes() == b"keep me"
    assert not (tmp_path / "f").is_symlink()
    assert (tmp_path / "f").read_bytes() == b"new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir()  # a directory cannot be replaced by a file
    (target / "x").write_bytes(b"")
    with pytest.raises(OSError):
        replace_file(target, b"new")
    assert sorted(os.listdir(tmp_path)) == ["d"]
