"""Publishing: serials, no overwrite, the target lock, crash safety."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aivault_ops.bundle import (
    DirectoryBundleSource,
    SigningKey,
    newest_bundle,
    publish_bundle,
    read_bundle_file,
    save_signing_key,
    target_lock,
    verify_bundle,
)
from aivault_ops.bundle.errors import BundleError
from aivault_ops.bundle.publish import LOCK_NAME
from aivault_ops.bundle.source import BundleRef, serial_of


def _published(target: Path) -> list[str]:
    return sorted(p.name for p in target.glob("bundle-*.tar.gz"))


def test_newest_bundle_of_an_empty_target_is_none(tmp_path: Path) -> None:
    assert newest_bundle(tmp_path) is None


def test_missing_target_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        newest_bundle(tmp_path / "missing")
    assert (info.value.code, info.value.message) == (
        "E-BUNDLE-READ",
        f"{tmp_path / 'missing'}: cannot list bundles: No such file or directory",
    )


def test_publish_writes_the_exact_bytes_with_mode_0644(tmp_path: Path, forge: Any) -> None:
    data = forge.valid(serial=1)
    path = publish_bundle(tmp_path, data, 1)
    assert path == tmp_path / "bundle-1.tar.gz"
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["bundle-1.tar.gz"]


def test_serials_increase_and_newest_is_by_number_not_name(tmp_path: Path, forge: Any) -> None:
    for serial in (1, 2, 9, 10):
        publish_bundle(tmp_path, forge.valid(serial=serial), serial)
    assert newest_bundle(tmp_path) == (10, tmp_path / "bundle-10.tar.gz")


def test_existing_bundle_is_never_overwritten(tmp_path: Path, forge: Any) -> None:
    original = forge.valid(serial=3)
    publish_bundle(tmp_path, original, 3)
    with pytest.raises(BundleError) as info:
        publish_bundle(tmp_path, forge.valid(serial=3, revision="other"), 3)
    assert info.value.code == "E-BUNDLE-EXISTS"
    assert info.value.message == (
        f"{tmp_path / 'bundle-3.tar.gz'} already exists; a published bundle is never overwritten"
    )
    assert (tmp_path / "bundle-3.tar.gz").read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["bundle-3.tar.gz"]


@pytest.mark.parametrize("serial", [-1, True])
def test_invalid_serial_is_refused(tmp_path: Path, serial: int) -> None:
    with pytest.raises(BundleError):
        publish_bundle(tmp_path, b"x", serial)
    assert os.listdir(tmp_path) == []


def test_other_files_are_ignored(tmp_path: Path, forge: Any) -> None:
    publish_bundle(tmp_path, forge.valid(serial=4), 4)
    for name in [
        "bundle-01.tar.gz",
        "bundle-x.tar.gz",
        "bundle-5.tar.gz.partial",
        ".tmp-bundle-abc.partial",
        "bundle-5.tgz",
        "notes.txt",
    ]:
        (tmp_path / name).write_bytes(b"junk")
    (tmp_path / "bundle-7.tar.gz").mkdir()
    (tmp_path / "bundle-8.tar.gz").symlink_to(tmp_path / "bundle-4.tar.gz")
    assert newest_bundle(tmp_path) == (4, tmp_path / "bundle-4.tar.gz")
    assert DirectoryBundleSource(tmp_path).list() == [BundleRef(4, "bundle-4.tar.gz")]


@pytest.mark.parametrize(
    ("name", "serial"),
    [
        ("bundle-0.tar.gz", 0),
        ("bundle-12.tar.gz", 12),
        ("bundle-012.tar.gz", None),
        ("bundle--1.tar.gz", None),
        ("bundle-1.tar.gz\n", None),
        ("bundle-1.tar", None),
    ],
)
def test_serial_of_accepts_only_the_canonical_name(name: str, serial: int | None) -> None:
    assert serial_of(name) == serial


def test_directory_source_reads_and_caps_size(tmp_path: Path, forge: Any) -> None:
    data = forge.valid(serial=1)
    publish_bundle(tmp_path, data, 1)
    ref = BundleRef(1, "bundle-1.tar.gz")
    assert DirectoryBundleSource(tmp_path).read(ref) == data
    with pytest.raises(BundleError) as info:
        DirectoryBundleSource(tmp_path, max_bytes=100).read(ref)
    assert (info.value.code, info.value.message) == (
        "E-BUNDLE-TOO-LARGE",
        "the file is larger than 100 bytes",
    )


_HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aivault_ops.bundle import target_lock
    with target_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def test_target_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder.stdin.write("release\n")
            holder.stdin.close()
            assert holder.wait(timeout=60) == 0
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_target_lock_is_reentrant_after_release(tmp_path: Path) -> None:
    with target_lock(tmp_path):
        pass
    with target_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()


_APPLY_LOOP = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from aivault_ops.bundle import (
        build_bundle, load_signing_key, newest_bundle, publish_bundle, target_lock,
    )

    target, writer, rounds = Path(sys.argv[1]), sys.argv[3], int(sys.argv[4])
    key = load_signing_key(Path(sys.argv[2]))
    sys.stdin.readline()  # start together
    for i in range(rounds):
        with target_lock(target):
            newest = newest_bundle(target)
            serial = 1 if newest is None else newest[0] + 1
            data = build_bundle(
                policy_json=b"{}", secret_files={}, serial=serial, revision=f"{writer}-{i}",
                environment=None, expires_at=None, signing_key=key,
            )
            publish_bundle(target, data, serial)
    """
)


def test_concurrent_publishers_under_the_lock_never_collide(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    key_file = tmp_path / "key.pem"
    save_signing_key(signing_key, key_file)
    rounds = 25
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _APPLY_LOOP, str(target), str(key_file), name, str(rounds)],
            stdin=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    revisions = {}
    for ref in DirectoryBundleSource(target).list():
        verified = verify_bundle(
            DirectoryBundleSource(target).read(ref),
            trusted_keys=[signing_key.public_key],
            now=datetime.now(UTC),
        )
        assert verified.manifest.serial == ref.serial
        revisions[ref.serial] = verified.manifest.revision
    assert sorted(revisions) == list(range(1, 2 * rounds + 1))
    expected = {f"{name}-{i}" for name in "ab" for i in range(rounds)}
    assert set(revisions.values()) == expected


_CRASHING_PUBLISHER = textwrap.dedent(
    """
    import os, stat, sys, time
    from pathlib import Path
    from aivault_ops.bundle import publish_bundle

    target, source, stage = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    real_fsync = os.fsync

    def fsync_then_hang(fd):
        real_fsync(fd)
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        if is_dir == (stage == "directory"):
            print("inside", flush=True)
            time.sleep(3600)

    os.fsync = fsync_then_hang
    publish_bundle(target, source.read_bytes(), 2)
    """
)


@pytest.mark.parametrize("stage", ["file", "directory"])
def test_kill_during_publish_never_leaves_a_partial_bundle(
    tmp_path: Path, forge: Any, stage: str
) -> None:
    """The publisher is SIGKILLed while it is inside fsync of the temp file (before the
    bundle gets its name) or of the directory (after): either way every
    `bundle-*.tar.gz` present verifies, and the older bundle stays the newest until
    the new one is complete."""
    target = tmp_path / "target"
    target.mkdir()
    publish_bundle(target, forge.valid(serial=1), 1)
    big = forge.valid(serial=2, secret_files={"secrets/big.sops.yaml": os.urandom(8 << 20)})
    source = tmp_path / "big.tar.gz"
    source.write_bytes(big)
    with subprocess.Popen(
        [sys.executable, "-c", _CRASHING_PUBLISHER, str(target), str(source), stage],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "inside\n"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    if stage == "file":
        assert _published(target) == ["bundle-1.tar.gz"]
        assert [
            p.name.startswith(".tmp-bundle-") for p in target.iterdir() if p.name.startswith(".tmp")
        ] == [True]
        assert newest_bundle(target) == (1, target / "bundle-1.tar.gz")
    else:
        assert _published(target) == ["bundle-1.tar.gz", "bundle-2.tar.gz"]
        assert (target / "bundle-2.tar.gz").read_bytes() == big
    source_dir = DirectoryBundleSource(target)
    for ref in source_dir.list():
        verify_bundle(source_dir.read(ref), trusted_keys=[forge.key.public_key], now=forge.NOW)


def test_publish_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        publish_bundle(tmp_path / "missing", b"x", 1)
    assert info.value.message == (
        f"{tmp_path / 'missing'}: cannot write a bundle: No such file or directory"
    )


@pytest.mark.parametrize("error_number", [errno.EPERM, errno.ENOTSUP, errno.EXDEV])
def test_filesystems_without_hard_links_fall_back_to_rename(
    tmp_path: Path, forge: Any, monkeypatch: pytest.MonkeyPatch, error_number: int
) -> None:
    def no_links(source: object, destination: object) -> None:
        raise OSError(error_number, os.strerror(error_number))

    monkeypatch.setattr(os, "link", no_links)
    data = forge.valid(serial=1)
    assert publish_bundle(tmp_path, data, 1).read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["bundle-1.tar.gz"]


def test_other_link_errors_are_reported_and_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_link(source: object, destination: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(BundleError) as info:
        publish_bundle(tmp_path, b"x", 1)
    final = tmp_path / "bundle-1.tar.gz"
    assert info.value.message == f"{final}: cannot publish: {os.strerror(errno.EIO)}"
    assert os.listdir(tmp_path) == []


def test_read_bundle_file_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        read_bundle_file(tmp_path / "nope.tar.gz")
    assert (info.value.code, info.value.message) == (
        "E-BUNDLE-READ",
        "cannot read: No such file or directory",
    )
