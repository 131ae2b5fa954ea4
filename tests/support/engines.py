"""The real engines a fleet needs, on 127.0.0.1 with a temporary config and data dir.

`docker-registry` is Debian's package of the CNCF distribution registry;
`redis-server` is Debian's Redis. Each runs as a subprocess on a free port,
is waited for with a bounded poll, and is stopped by its pid (never by
name). `scripts/test.sh` installs both on a fresh machine.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from support.runtime_proc import free_port, wait_until

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
{auth}"""
HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: test-registry
    path: {path}
"""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed (scripts/test.sh installs it: apt-get install {name})"
        )
    return path


@dataclass
class Engine:
    """A server subprocess on a fixed port: start, stop by pid, start again on the same data."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        """Start and wait (bounded) until it answers."""
        log = (self.workdir / "server.log").open("ab")
        with log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        wait_until(self._alive_and_ready, what=f"{self.command()[0]} on port {self.port}")

    def _alive_and_ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.workdir / "server.log").read_text(errors="replace")
            raise AssertionError(f"{self.command()[0]} exited: {log[-2000:]}")
        return self.ready()

    def stop(self) -> None:
        """SIGTERM by pid, then wait (SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@dataclass
class Registry(Engine):
    """The distribution registry, plain HTTP on loopback, deletes enabled; with `users`,
    Basic auth from an htpasswd file (bcrypt, as the registry requires)."""

    users: dict[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        config = self.workdir / "config.yml"
        data = self.workdir / "data"
        auth = ""
        if self.users:
            import bcrypt

            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"
                    for user, password in self.users.items()
                )
            )
            auth = HTPASSWD_AUTH.format(path=htpasswd)
        config.write_text(REGISTRY_CONFIG.format(data=data, port=self.port, auth=auth))
        return [_binary("docker-registry"), "serve", str(config)]

    def ready(self) -> bool:
        try:
            status = httpx.get(f"http://127.0.0.1:{self.port}/v2/", timeout=1).status_code
        except httpx.HTTPError:
            return False
        return status == (401 if self.users else 200)

    def url(self, repository: str) -> str:
        """`oci://127.0.0.1:<port>/<repository>`."""
        return f"oci://127.0.0.1:{self.port}/{repository}"


@dataclass
class Redis(Engine):
    """redis-server without persistence, loopback only."""

    def command(self) -> list[str]:
        return [
            _binary("redis-server"),
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:<port>/0`."""
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One registry per test worker; tests use their own repository names."""
    server = Registry(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of this test's own (to stop and start again)."""
    (tmp_path / "registry").mkdir()
    server = Registry(tmp_path / "registry")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Redis]:
    """A Redis of this test's own (to stop and start again)."""
    (tmp_path / "redis").mkdir()
    server = Redis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
