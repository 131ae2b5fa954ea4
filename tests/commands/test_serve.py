"""`aivault-ops serve`: option checks, warnings, logs, signals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.fixtures import _session_upstream, bundle_dir, factory, start_runtime, upstream
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until
from support.upstream import RecordingUpstream

from aivault_ops.commands.serve import parse_listen
from aivault_ops.errors import UsageError
from aivault_ops.main import main
from aivault_ops.runtime.process import LISTEN_BACKLOG

AUTH = {"Authorization": f"Bearer {TOKEN}"}
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
    assert runtime.process is not None
    assert _without_tcache(runtime.process.pid)  # restarted in place: the pid we started
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


def _without_tcache(pid: int) -> bool:
    """Whether the process started with glibc's per-thread cache off."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    tunables = [v for v in environ if v.startswith(b"GLIBC_TUNABLES=")]
    return tunables == [b"GLIBC_TUNABLES=glibc.malloc.tcache_count=0"]


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
    assert all(_without_tcache(pid) for pid in pids)  # forked after the restart
    factory.publish(bundle_dir, 2)

    def all_workers_on_2() -> bool:
        return all(runtime.status()["serial"] == 2 for _ in range(10))

    wait_until(all_workers_on_2, what="every worker on serial 2")
    assert runtime.stop() == 0
    assert runtime.log().count('"event": "stopping"') == 2


def test_workers_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(serve(tmp_path, "--trust", "ed25519:x", "--workers", "0")) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_a_taken_port_fails_before_the_bundle_is_loaded(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Binding comes first: a taken port must not load a bundle or move the serial floor."""
    import socket

    factory.publish(bundle_dir, 1)
    state = bundle_dir / "s"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        options = ["--identity", str(factory.identity), "--trust", factory.trust]
        code = main(serve(bundle_dir, *options, "--listen", f"127.0.0.1:{port}"))
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"aivault-ops: error: cannot listen on 127.0.0.1:{port}: ")
    assert "bundle_activated" not in err
    assert not (state / "serial-floor.json").exists()


def test_sigterm_closes_idle_connections_at_once_and_lets_a_request_finish(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    """An idle kept-alive connection must not hold shutdown for the grace period (60 s
    here); a request in flight still gets its answer."""
    import socket
    import threading

    factory.publish(bundle_dir, 1, limits={"timeoutMs": 10000})
    runtime = start_runtime("--shutdown-grace", "60")
    idle = socket.create_connection(("127.0.0.1", runtime.port))
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"true}"):
        answer += idle.recv(1000)
    assert answer.startswith(b"HTTP/1.1 200")
    answers: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            httpx.get(runtime.url + "/v/my-api/v1/users/slow", headers=AUTH, timeout=30)
        )
    )
    slow.start()
    wait_until(lambda: any(s.path.endswith("/slow") for s in upstream.seen), what="in flight")
    assert runtime.process is not None
    runtime.process.terminate()
    runtime.process.wait(timeout=30)  # far below the grace period: nothing idle held it
    slow.join(timeout=30)
    assert [a.status_code for a in answers] == [200]
    assert idle.recv(100) == b""
    idle.close()
    assert runtime.process.returncode == 0


def test_serve_warns_about_a_secret_still_holding_the_init_placeholder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A repo fresh from `init` still holds `replace-me`: the runtime says so (by name)."""
    from aivault_ops.runtime.bundles.loader import placeholders
    from aivault_ops.secret import Secret

    keys = tmp_path / "keys"
    assert main(["init", str(tmp_path / "vault.d"), "--identity-out", str(keys / "id.txt"),
                 "--signing-key-out", str(keys / "sign.pem")]) == 0  # fmt: skip
    bundles = tmp_path / "bundles"
    assert main(["apply", str(tmp_path / "vault.d"), "--target", str(bundles),
                 "--signing-key", str(keys / "sign.pem")]) == 0  # fmt: skip
    capsys.readouterr()
    found = placeholders(
        {("secrets/a.sops.yaml", "A"): Secret("replace-me"), ("s", "B"): Secret("real")}
    )
    assert found == ("secrets/a.sops.yaml#A",)
    from aivault_ops.bundle.keys import load_signing_key

    trust = str(load_signing_key(keys / "sign.pem").public_key)
    runtime = RuntimeProcess(
        bundle_dir=bundles, state_dir=tmp_path / "state", log_path=tmp_path / "serve.log",
        args=["--identity", str(keys / "id.txt"), "--trust", trust],
    ).start()  # fmt: skip
    runtime.stop()
    assert (
        "secret secrets/example-api.sops.yaml#EXAMPLE_API_KEY still holds the placeholder"
        " `init` wrote; set the real value with `aivault-ops secrets set EXAMPLE_API_KEY`"
    ) in runtime.log()
    assert "replace-me" not in runtime.log()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--audit-warn-free-bytes", "1M"],
            "--audit-warn-free-bytes must be at least --audit-min-free-bytes"
            " (the warning comes before the refusal)",
        ),
        (["--audit-max-file-bytes", "512"], "--audit-max-file-bytes must be at least 1024"),
        (["--audit-retain-days", "0"], "--audit-retain-days must be positive"),
        (
            ["--audit-retain-bytes", "12Q"],
            "argument --audit-retain-bytes: '12Q' is not a size"
            " (a whole number of bytes, or with K, M, G, T)",
        ),
    ],
)
def test_audit_options_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    args = serve(tmp_path, "--trust", "ed25519:x", "--socket", str(tmp_path / "sock"), *options)
    if message.startswith("argument"):  # argparse's own error
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == 2
    else:
        assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _listen_backlog(*ss_args: str) -> int:
    """The accept queue's size of the one listening socket `ss` finds (its Send-Q)."""
    run = subprocess.run(["ss", "-lH", *ss_args], capture_output=True, text=True, check=True)
    [line] = run.stdout.splitlines()
    fields = line.split()  # [Netid] State Recv-Q Send-Q Local Peer
    return int(fields[fields.index("LISTEN") + 2])


def test_the_listeners_keep_their_backlog_once_served(
    start_runtime: StartRuntime, tmp_path: Path
) -> None:
    """The event loop listens again on a socket it serves (with 100 unless told)."""
    sock = tmp_path / "rt.sock"
    runtime = start_runtime("--socket", str(sock))
    assert _listen_backlog("-tn", "sport", "=", f":{runtime.port}") == LISTEN_BACKLOG
    assert _listen_backlog("-x", "src", str(sock)) == LISTEN_BACKLOG
    assert runtime.stop() == 0
