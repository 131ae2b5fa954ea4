"""`aivault-ops serve`: option checks, warnings, logs, signals."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.fixtures import _session_upstream, bundle_dir, factory, start_runtime, upstream
from support.runtime_proc import StartRuntime, wait_until

from aivault_ops.commands.serve import parse_listen
from aivault_ops.errors import UsageError
from aivault_ops.main import main

__all__ = ["_session_upstream", "bundle_dir", "factory", "start_runtime", "upstream"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        ("127.1.2.3:1", ("127.1.2.3", 1)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_loopback_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value, public=False) == expected


@pytest.mark.parametrize("value", ["0.0.0.0:8787", "192.168.1.2:80", "[::]:80", "example.com:80"])
def test_non_loopback_needs_listen_public(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_listen(value, public=False)
    assert caught.value.message == f"--listen {value!r} is not a loopback address"
    assert parse_listen(value, public=True)[1] == int(value.rsplit(":", 1)[1])


@pytest.mark.parametrize("value", ["8787", ":80", "127.0.0.1:", "127.0.0.1:99999", "h:x"])
def test_malformed_listen(value: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(value, public=True)


def serve(tmp_path: Path, *args: str) -> list[str]:
    return ["serve", "--bundle-dir", str(tmp_path), "--state-dir", str(tmp_path / "s"), *args]


def test_public_listen_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(serve(tmp_path, "--trust", "ed25519:x", "--listen", "0.0.0.0:8787"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("aivault-ops: error: --listen '0.0.0.0:8787' is not a loopback address")
    assert not (tmp_path / "s").exists()


def test_missing_bundle_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(serve(tmp_path / "nope", "--trust", "ed25519:x"))
    assert code == 2
    assert f"--bundle-dir {tmp_path / 'nope'}: not a directory" in capsys.readouterr().err


def test_bad_trust_key(
    tmp_path: Path, factory: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(serve(tmp_path, "--identity", str(factory.identity), "--trust", "ed25519:!!"))
    assert code == 1
    assert "not valid base64" in capsys.readouterr().err


def test_missing_identity(
    tmp_path: Path, factory: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(serve(tmp_path, "--identity", str(tmp_path / "none.txt"), "--trust", factory.trust))
    assert code == 1
    assert f"identity file {tmp_path / 'none.txt'} does not exist" in capsys.readouterr().err


def test_a_regular_file_at_the_socket_path_is_not_removed(
    tmp_path: Path, factory: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    args = [
        "--identity",
        str(factory.identity),
        "--trust",
        factory.trust,
        "--socket",
        str(precious),
    ]
    assert main(serve(tmp_path, *args)) == 2
    assert precious.read_text() == "keep me"
    assert "exists and is not a socket" in capsys.readouterr().err


def test_start_logs_are_json_warn_about_dev_options_and_exit_0_on_sigterm(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime()
    assert runtime.stop() == 0
    events = [json.loads(line) for line in runtime.log().splitlines()]
    details = [e.get("detail", "") for e in events if e["event"] == "warning"]
    assert any(
        d.startswith("DEVELOPMENT ONLY: --dev-resolve sends api.example.com") for d in details
    )
    assert any(d.startswith("DEVELOPMENT ONLY: --dev-ca-cert trusts") for d in details)
    names = [e["event"] for e in events]
    order = [names.index(name) for name in ("bundle_activated", "listening", "stopping")]
    assert order == sorted(order)
    assert CANARY not in runtime.log()


def test_text_logs(start_runtime: StartRuntime) -> None:
    runtime = start_runtime("--log-format", "text")
    runtime.stop()
    lines = runtime.log().splitlines()
    assert any(" no_policy detail=" in line for line in lines)
    assert any(f" listening address=127.0.0.1:{runtime.port}" in line for line in lines)


def test_workers_share_the_port_reload_together_and_share_rate_limits(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1, limits={"rateLimitPerMinute": 3})
    runtime = start_runtime("--workers", "2")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    codes = [
        httpx.get(runtime.url + "/v/my-api/v1/users", headers=auth).status_code for _ in range(4)
    ]
    assert sorted(codes) == [200, 200, 200, 429]
    pids = {
        json.loads(line)["pid"]
        for line in runtime.log().splitlines()
        if json.loads(line)["event"] == "listening"
    }
    assert len(pids) == 2
    factory.publish(bundle_dir, 2)

    def all_workers_on_2() -> bool:
        return all(runtime.status()["serial"] == 2 for _ in range(10))

    wait_until(all_workers_on_2, what="every worker on serial 2")
    assert runtime.stop() == 0
    assert runtime.log().count('"event": "stopping"') == 2


def test_workers_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(serve(tmp_path, "--trust", "ed25519:x", "--workers", "0")) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
