"""`aivault_ops.main`: usage errors, the one error handler and `python -m aivault_ops`."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from aivault_ops import __version__
from aivault_ops.commands import verify
from aivault_ops.main import main

KEY = "ed25519:" + "A" * 43 + "="


def test_an_unknown_command_is_a_usage_error_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["nope"])
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: aivault-ops [-h]")
    assert "aivault-ops: error: argument COMMAND: invalid choice: 'nope'" in err


def test_a_refusal_is_one_error_line_and_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path / "missing.tar.gz"), "--trust", KEY]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"aivault-ops: error: {tmp_path / 'missing.tar.gz'}: ")
    assert err.count("\n") == 1


def test_an_internal_error_names_only_the_exception_class_unless_verbose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(**_: object) -> int:
        raise RuntimeError("detail that may hold request data")

    monkeypatch.setattr(verify, "run_verify", broken)  # no real bug to trigger on purpose
    argv = ["verify", str(tmp_path / "b.tar.gz"), "--trust", KEY]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        "aivault-ops: internal error: RuntimeError (run with --verbose for details;"
        " please report it)\n"
    )
    assert main(["--verbose", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "RuntimeError: detail that may hold request data" in err


def test_ctrl_c_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(**_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(verify, "run_verify", interrupted)
    assert main(["verify", str(tmp_path / "b.tar.gz"), "--trust", KEY]) == 130
    assert capsys.readouterr().err == "aivault-ops: interrupted\n"


def test_python_dash_m_runs_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["aivault-ops", "--version"])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("aivault_ops", run_name="__main__")
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"aivault-ops {__version__}\n"
