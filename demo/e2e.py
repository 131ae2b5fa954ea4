"""End to end on one machine: vault.d → signed bundle → runtime → invoke → upstream.

Everything runs on 127.0.0.1. The signing key is made fresh for each run; the
age identity is the DEMO-ONLY one in demo/keys/ that vault.d's example secrets
are encrypted to. The upstream is `aivault-ops dev-upstream`, a local HTTPS
echo server standing in for api.example.com with a throwaway CA.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IDENTITY = REPO / "demo" / "keys" / "DEMO-ONLY-age-identity.txt"
TOKEN = "avt_demo_research_agent_DO_NOT_USE_IN_PRODUCTION"  # noqa: S105 - public demo token
CLI = [sys.executable, "-m", "aivault_ops"]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(*args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    print(f"$ aivault-ops {shown}", flush=True)
    result = subprocess.run([*CLI, *args], text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if check and result.returncode != 0:
        raise SystemExit(f"demo failed: exit {result.returncode}")
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL we built
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo failed: {url} did not answer")


def start_upstream(work: Path) -> tuple[subprocess.Popen[str], Path, list[str]]:
    """`aivault-ops dev-upstream`: its process, its log, and the serve flags it printed."""
    log = (work / "upstream.log").open("w")
    command = [*CLI, "dev-upstream", "--host", "api.example.com", "--dir", str(work / "dev-ca")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    print(process.stdout.readline(), end="")
    flags_line = process.stdout.readline()
    print(flags_line, end="")
    if "--dev-resolve" not in flags_line:
        raise SystemExit("demo failed: dev-upstream did not start")
    return process, work / "upstream.log", shlex.split(flags_line.partition(": ")[2])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="aivault-demo-"))
    processes: list[subprocess.Popen[str]] = []
    try:
        demo(work, processes)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def demo(work: Path, processes: list[subprocess.Popen[str]]) -> None:
    os.chdir(REPO)
    step("1. Validate the example policy repo (what the pre-commit hook runs)")
    run("validate", "vault.d")
    step("2. CI: make a signing key, then plan and apply a signed bundle")
    public_key = run("keys", "signing", "--out", str(work / "signing.pem")).stdout.strip()
    bundles = work / "bundles"
    run("plan", "vault.d", "--target", str(bundles), check=False)
    run("apply", "vault.d", "--target", str(bundles), "--signing-key", str(work / "signing.pem"))
    run("verify", str(bundles / "bundle-1.tar.gz"), "--trust", public_key)
    step("3. A local HTTPS upstream standing in for api.example.com")
    print("$ aivault-ops dev-upstream --host api.example.com")
    upstream, upstream_log, dev_flags = start_upstream(work)
    processes.append(upstream)
    step("4. The runtime: verifies and loads the bundle, serves on loopback")
    port = free_port()
    runtime_log = (work / "runtime.log").open("w")
    serve = [
        "serve", "--bundle-dir", str(bundles), "--identity", str(IDENTITY), "--trust", public_key,
        "--listen", f"127.0.0.1:{port}", "--state-dir", str(work / "state"), *dev_flags,
    ]  # fmt: skip
    print(f"$ aivault-ops {' '.join(serve)}")
    processes.append(subprocess.Popen([*CLI, *serve], stderr=runtime_log, text=True))
    runtime = f"http://127.0.0.1:{port}"
    wait_for(f"{runtime}/healthz")
    run("status", "--runtime", runtime)
    step("5. An agent invokes a capability with its consumer token (never the API key)")
    env = {**os.environ, "AIVAULT_OPS_TOKEN": TOKEN}
    invoke = ("invoke", "example-api/users", "--runtime", runtime)
    result = run(*invoke, "--path", "/v1/users", env=env)
    step("6. What the upstream saw: the real credential, injected by the runtime")
    sys.stdout.write(upstream_log.read_text())
    echoed = {k.lower(): v for k, v in json.loads(result.stdout)["echoedHeaders"].items()}
    print(f"the caller saw the echoed authorization header as: {echoed['authorization']!r}")
    assert "demo-example-api-key" not in result.stdout, "the key leaked to the caller"
    step("7. Policy refuses what the capability does not allow (nothing reaches the upstream)")
    run("invoke", "example-api/users", "--method", "DELETE", "--path", "/v1/users/7",
        "--runtime", runtime, env=env, check=False)  # fmt: skip
    run("invoke", "example-api/users", "--path", "/v1/users/../admin", "--runtime", runtime,
        env=env, check=False)  # fmt: skip
    step("8. The tamper-evident audit log")
    run("audit", "verify", "--state-dir", str(work / "state"))
    print("\nDemo complete: the upstream got the key, the caller never did.")


if __name__ == "__main__":
    main()
