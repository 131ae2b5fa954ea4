"""`aivault-ops audit verify`: exit codes and output, run as a user runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cli_support import run_cli

from aivault_ops.runtime.observe.audit import AuditLog
from aivault_ops.runtime.observe.audit_verify import verify_chain


def write_log(state_dir: Path, count: int) -> Path:
    log = AuditLog(state_dir, clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    for index in range(count):
        log.record(
            consumer="agent",
            capability="x/y",
            credential="x",
            method="GET",
            path="/v1",
            decision="allow",
            error=None,
            status=200 + index,
            bytes_out=1,
            duration_ms=1.0,
            serial=1,
        )
    return state_dir / "audit" / "audit.jsonl"


def test_intact_chain_exits_0_with_counts(tmp_path: Path) -> None:
    write_log(tmp_path / "state", 3)
    result = run_cli("audit", "verify", "--state-dir", tmp_path / "state", cwd=tmp_path)
    head = verify_chain(tmp_path / "state").head
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"audit chain ok: 3 lines in 1 files; head {head}\n"


def test_broken_chain_exits_1_naming_the_first_broken_line(tmp_path: Path) -> None:
    path = write_log(tmp_path / "state", 3)
    path.write_bytes(path.read_bytes().replace(b'"status":201', b'"status":500'))
    result = run_cli("audit", "verify", "--state-dir", tmp_path / "state", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == (
        f"{path}:3: chain broken: 'prev' is not the sha256 of the previous line"
        " (a line was changed, removed or inserted)\n"
    )


def test_json_output(tmp_path: Path) -> None:
    path = write_log(tmp_path / "state", 2)
    ok = run_cli("audit", "verify", "--state-dir", tmp_path / "state", "--json", cwd=tmp_path)
    assert ok.returncode == 0
    assert json.loads(ok.stdout) == {
        "ok": True,
        "files": 1,
        "lines": 2,
        "head": verify_chain(tmp_path / "state").head,
        "broken": None,
        "pruned": None,
    }
    path.write_bytes(b"x\n" + path.read_bytes())
    broken = run_cli("audit", "verify", "--state-dir", tmp_path / "state", "--json", cwd=tmp_path)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["broken"] == {
        "file": str(path),
        "line": 1,
        "reason": "line is not JSON (edited or torn)",
    }


def test_default_state_dir_follows_xdg_state_home(tmp_path: Path) -> None:
    write_log(tmp_path / "xdg" / "aivault-ops", 1)
    result = run_cli("audit", "verify", cwd=tmp_path, env={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert result.returncode == 0
    assert result.stdout.startswith("audit chain ok: 1 lines in 1 files")


def test_missing_audit_log_is_an_error(tmp_path: Path) -> None:
    result = run_cli("audit", "verify", "--state-dir", tmp_path / "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"aivault-ops: error: {tmp_path / 'nope'}: no audit log"
        f" (expected {tmp_path / 'nope' / 'audit'})\n  hint: pass the runtime's --state-dir\n"
    )


def test_a_pruned_log_verifies_from_its_anchor_and_says_what_went(tmp_path: Path) -> None:
    from aivault_ops.runtime.observe.audit_anchor import read_anchor
    from aivault_ops.runtime.observe.audit_settings import AuditSettings

    state = tmp_path / "state"
    settings = AuditSettings(max_file_bytes=1024, rotate="size", retain_bytes=2048)
    log = AuditLog(
        state, clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC), settings=settings
    )
    for index in range(20):
        log.record(
            consumer="agent", capability="x/y", credential="x", method="GET", path="/v1",
            decision="allow", error=None, status=200 + index, bytes_out=1, duration_ms=1.0,
            serial=1,
        )  # fmt: skip
    assert log.maintenance.wait_idle(timeout=30)
    anchor = read_anchor(state / "audit")
    assert anchor is not None
    report = verify_chain(state)
    result = run_cli("audit", "verify", "--state-dir", state, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"audit chain ok: {report.lines} lines in {report.files} files; head {report.head}\n"
        f"pruned: {anchor.files} files ({anchor.bytes} bytes) up to {anchor.through},"
        f" the last line dated 2026-11-27T12:00:00.000Z; the retained chain starts from"
        f" {anchor.prev}\n"
    )
    as_json = run_cli("audit", "verify", "--state-dir", state, "--json", cwd=tmp_path)
    assert json.loads(as_json.stdout)["pruned"] == {
        "files": anchor.files,
        "bytes": anchor.bytes,
        "through": anchor.through,
        "lastTs": "2026-11-27T12:00:00.000Z",
        "prev": anchor.prev,
    }
