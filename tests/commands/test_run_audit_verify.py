"""`run_audit_verify` called in-process on a real hash-chained audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aivault_ops.commands.audit import run_audit_verify
from aivault_ops.errors import AivaultError
from aivault_ops.runtime.observe.audit import AuditLog
from aivault_ops.runtime.observe.audit_verify import verify_chain


def write_log(state_dir: Path, count: int) -> Path:
    log = AuditLog(state_dir, clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    for index in range(count):
        log.record(
            consumer="agent", capability="x/y", credential="x", method="GET", path="/v1",
            decision="allow", error=None, status=200 + index, bytes_out=1, duration_ms=1.0,
            serial=1,
        )  # fmt: skip
    return state_dir / "audit" / "audit.jsonl"


def test_an_intact_chain_is_ok_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(tmp_path, 2)
    head = verify_chain(tmp_path).head
    assert run_audit_verify(state_dir=tmp_path) == 0
    assert capsys.readouterr().out == f"audit chain ok: 2 lines in 1 files; head {head}\n"
    assert run_audit_verify(state_dir=tmp_path, as_json=True) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True, "files": 1, "lines": 2, "head": head, "broken": None, "pruned": None,
    }  # fmt: skip


def test_a_broken_chain_names_the_first_broken_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_log(tmp_path, 3)
    path.write_bytes(path.read_bytes().replace(b'"status":201', b'"status":500'))
    assert run_audit_verify(state_dir=tmp_path) == 1
    assert capsys.readouterr().out.startswith(f"{path}:3: chain broken: ")
    assert run_audit_verify(state_dir=tmp_path, as_json=True) == 1
    broken = json.loads(capsys.readouterr().out)["broken"]
    assert (broken["file"], broken["line"]) == (str(path), 3)


def test_the_default_state_dir_follows_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with pytest.raises(AivaultError) as caught:
        run_audit_verify(state_dir=None)
    assert caught.value.message == (
        f"{tmp_path / 'aivault-ops'}: no audit log (expected {tmp_path / 'aivault-ops' / 'audit'})"
    )
    write_log(tmp_path / "aivault-ops", 1)
    assert run_audit_verify(state_dir=None) == 0
    assert capsys.readouterr().out.startswith("audit chain ok: 1 lines in 1 files")
