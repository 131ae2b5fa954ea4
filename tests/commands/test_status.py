"""`aivault-ops status` against a real runtime subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bundles import BundleFactory
from support.fixtures import _session_upstream, bundle_dir, factory, start_runtime, upstream
from support.runtime_proc import StartRuntime, free_port

from aivault_ops.commands.status import render_status
from aivault_ops.main import main

__all__ = ["_session_upstream", "bundle_dir", "factory", "start_runtime", "upstream"]


def test_ready_runtime_in_json_and_text(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    factory.publish(bundle_dir, 4)
    runtime = start_runtime()
    assert main(["status", "--runtime", runtime.url, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["state"], document["serial"], document["revision"]) == ("ready", 4, "rev-4")
    assert main(["status", "--runtime", runtime.url]) == 0
    text = capsys.readouterr().out
    assert "state:         ready\n" in text
    assert "serial:        4\n" in text
    assert "capabilities:  1\n" in text


def test_not_ready_exits_1(start_runtime: StartRuntime, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = start_runtime()
    assert main(["status", "--runtime", runtime.url]) == 1
    assert "state:         not_ready\n" in capsys.readouterr().out


def test_unreachable_runtime_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["status", "--runtime", url]) == 1
    assert "cannot reach the runtime" in capsys.readouterr().err


def test_render_status_lists_problems() -> None:
    text = render_status({"state": "ready", "problems": ["credential 'x': E-A: b"]})
    assert text.endswith("problem:       credential 'x': E-A: b\n")


def test_render_status_shows_dashes_for_missing_values() -> None:
    text = render_status({"state": "not_ready", "counts": {}})
    assert text.splitlines()[:3] == [
        "state:         not_ready",
        "serial:        -",
        "revision:      -",
    ]


def test_wait_returns_once_the_runtime_starts_and_is_ready(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`status --wait` right after starting `serve` in the background (no answer yet)."""
    factory.publish(bundle_dir, 2)
    runtime = start_runtime(wait=False)
    assert main(["status", "--runtime", runtime.url, "--wait", "30"]) == 0
    assert "serial:        2\n" in capsys.readouterr().out


def test_wait_gives_up_with_the_last_answer(
    start_runtime: StartRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = start_runtime()
    assert main(["status", "--runtime", runtime.url, "--wait", "0.3"]) == 1
    assert "state:         not_ready\n" in capsys.readouterr().out
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["status", "--runtime", url, "--wait", "0.3"]) == 1
    assert "cannot reach the runtime" in capsys.readouterr().err
