"""The servers under test, each a subprocess on 127.0.0.1 stopped by `Processes.close`.

- `start_nginx_upstream`: nginx (1 worker, keep-alive) answering a fixed
  33-byte JSON body over TLS, certificate for `api.example.com` from a
  trustme CA.
- `start_nginx_injector`: nginx (1 worker) as a plain-http reverse proxy
  that injects `Authorization: Bearer …` toward that https upstream, with
  upstream keep-alive — the practical ceiling for an injecting proxy.
- `start_runtime`: `python -m aivault_ops serve` with `--dev-resolve` and
  `--dev-ca-cert` pointing at the nginx upstream.
- `start_naive`: `benchmarks/naive_aiohttp_proxy.py`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import trustme

from benchmarks.bundles import HOST, Keys
from benchmarks.common import Processes, answers, free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
BODY = '{"ok":true,"data":"0123456789ab"}'
assert len(BODY) == 33


@dataclass(frozen=True)
class Tls:
    """CA file plus a server certificate/key for the upstream hosts and 127.0.0.1."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path, hosts: tuple[str, ...] = (HOST,)) -> Tls:
        """A fresh trustme CA and leaf certificate, written under `directory`."""
        ca = trustme.CA()
        leaf = ca.issue_cert(*hosts, "127.0.0.1")
        tls = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
        ca.cert_pem.write_to_path(str(tls.ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(tls.cert_file))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(tls.cert_file), append=True)
        leaf.private_key_pem.write_to_path(str(tls.key_file))
        return tls


def _nginx_main(prefix: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = prefix / "tmp"
    temp.mkdir(exist_ok=True)
    return (
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 75s;\n"
        + "".join(
            f"  {kind}_temp_path {temp}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
    )


def _start_nginx(processes: Processes, prefix: Path, http_block: str) -> int:
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(_nginx_main(prefix) + http_block + "}\n")
    command = ["nginx", "-p", str(prefix), "-c", "nginx.conf", "-g", "daemon off;"]
    return processes.start(command, prefix / "stdout.log", name=prefix.name)


def start_nginx_upstream(
    processes: Processes, workdir: Path, tls: Tls, status_port: int | None = None
) -> int:
    """The TLS upstream; returns its port. With `status_port`, nginx's stub_status is
    served there over plain http (`accepts` counts every connection opened to nginx)."""
    port = free_port()
    status = (
        f"  server {{\n    listen 127.0.0.1:{status_port};\n"
        "    location / { stub_status; }\n  }\n"
        if status_port
        else ""
    )
    block = status + (
        f"  server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name _;\n"
        f"    ssl_certificate {tls.cert_file};\n    ssl_certificate_key {tls.key_file};\n"
        "    location / {\n      default_type application/json;\n"
        f"      return 200 '{BODY}';\n    }}\n  }}\n"
    )
    _start_nginx(processes, workdir / "nginx-upstream", block)
    url = f"https://127.0.0.1:{port}/v1/users"
    wait_until(lambda: answers(url, verify=str(tls.ca_file)), "nginx upstream")
    return port


def nginx_accepts(status_port: int) -> int:
    """Connections nginx has accepted so far, not counting this query's own."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{status_port}/", timeout=5).text
    return int(text.splitlines()[2].split()[0]) - 1


def start_nginx_injector(
    processes: Processes, workdir: Path, tls: Tls, upstream_port: int, secret: str
) -> int:
    """The injecting reverse proxy (plain http in front); returns its port."""
    port = free_port()
    block = (
        f"  upstream tls_upstream {{\n    server 127.0.0.1:{upstream_port};\n"
        "    keepalive 128;\n  }\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n"
        "      proxy_pass https://tls_upstream;\n      proxy_http_version 1.1;\n"
        '      proxy_set_header Connection "";\n'
        f"      proxy_set_header Host {HOST};\n"
        f'      proxy_set_header Authorization "Bearer {secret}";\n'
        f"      proxy_ssl_name {HOST};\n      proxy_ssl_server_name on;\n"
        f"      proxy_ssl_verify on;\n      proxy_ssl_trusted_certificate {tls.ca_file};\n"
        "      proxy_ssl_session_reuse on;\n    }\n  }\n"
    )
    _start_nginx(processes, workdir / "nginx-injector", block)
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/v1/users"), "nginx injector")
    return port


@dataclass(frozen=True)
class RuntimeHandle:
    """A started runtime: pid, port, state dir."""

    pid: int
    port: int
    state_dir: Path

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"


def start_runtime(
    processes: Processes,
    workdir: Path,
    *,
    name: str,
    keys: Keys,
    tls: Tls,
    upstream_port: int,
    hosts: tuple[str, ...] = (HOST,),
    workers: int = 1,
    variant: str | None = None,
    ready_timeout: float = 120.0,
    source: Path = REPO,
    extra: tuple[str, ...] = (),
) -> RuntimeHandle:
    """`aivault-ops serve` on the bundle dir `workdir/<name>-bundles` (must hold a bundle);
    with `variant`, through `benchmarks.variants` (a what-if change patched in); `source`:
    the checkout whose `aivault_ops` runs (another revision, for `benchmarks.ab`); `extra`:
    more `serve` options."""
    port = free_port()
    state = workdir / f"{name}-state"
    launcher = ["aivault_ops"] if variant is None else ["benchmarks.variants", variant]
    command = [sys.executable, "-m", *launcher, "serve"]
    command += ["--bundle-dir", str(workdir / f"{name}-bundles"), "--state-dir", str(state)]
    command += ["--identity", str(keys.identity_file), "--trust", keys.trust]
    command += ["--listen", f"127.0.0.1:{port}", "--dev-ca-cert", str(tls.ca_file)]
    for host in hosts:
        command += ["--dev-resolve", f"{host}=127.0.0.1:{upstream_port}"]
    command += ["--workers", str(workers), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    paths = [str(source), str(REPO), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    pid = processes.start(command, workdir / f"{name}.log", env=env, name=name)
    handle = RuntimeHandle(pid, port, state)

    def ready() -> bool:
        processes.check_alive()
        return answers(handle.url + "/healthz") and _serial(handle) is not None

    wait_until(ready, f"runtime {name}", timeout=ready_timeout)
    return handle


def _serial(handle: RuntimeHandle) -> int | None:
    import httpx

    try:
        value = httpx.get(handle.url + "/status", timeout=5).json().get("serial")
    except (httpx.HTTPError, ValueError):
        return None
    return value if isinstance(value, int) else None


def start_naive(processes: Processes, workdir: Path, tls: Tls, upstream_port: int) -> int:
    """The naive aiohttp proxy; returns its port."""
    port = free_port()
    command = [sys.executable, str(Path(__file__).with_name("naive_aiohttp_proxy.py"))]
    command += [str(port), f"https://127.0.0.1:{upstream_port}", str(tls.ca_file)]
    processes.start(command, workdir / "naive.log", name="naive")
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/v1/users"), "naive aiohttp proxy")
    return port
