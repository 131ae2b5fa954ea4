"""`serve`'s fleet options refuse what they must before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import run_cli

TRUST = "ed25519:" + "A" * 43 + "="


SOURCE = ["--bundle-source", "oci://127.0.0.1:9/a"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            [*SOURCE, "--bundle-dir", "."],
            "give either --bundle-dir or --bundle-source (one of them)",
        ),
        ([], "give either --bundle-dir or --bundle-source (one of them)"),
        (["--bundle-source", "oci://10.0.0.1:5000/a:latest", "--plain-http"], "not a loopback"),
        (["--bundle-source", "oci://robot:hunter2@ghcr.io/a"], "credentials do not belong"),
        (
            [*SOURCE, "--rate-limit-store", "redis://:hunter2@127.0.0.1:6379/0"],
            "credentials do not belong",
        ),
        (
            [*SOURCE, "--rate-limit-store", "memcached://127.0.0.1/0"],
            "expected redis://HOST:PORT/DB",
        ),
    ],
    ids=["both", "neither", "plain-http", "oci-password", "redis-password", "scheme"],
)
def test_bad_fleet_options_are_usage_errors(
    tmp_path: Path, options: list[str], message: str
) -> None:
    result = run_cli(
        "serve", *options, "--trust", TRUST, "--state-dir", tmp_path / "state",
        "--listen", "127.0.0.1:0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
