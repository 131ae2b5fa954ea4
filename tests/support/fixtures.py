"""Runtime fixtures shared by tests/runtime and tests/commands (import them by name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.bundles import CANARY, BundleFactory, make_factory
from support.runtime_proc import RuntimeProcess, StartRuntime, scan_tree
from support.upstream import RecordingUpstream, recording_upstream


@pytest.fixture(scope="session")
def factory(tmp_path_factory: pytest.TempPathFactory) -> BundleFactory:
    """One age identity, signing key and SOPS file (holding the canary) per session."""
    return make_factory(tmp_path_factory.mktemp("factory"))


@pytest.fixture(scope="session")
def _session_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingUpstream]:
    with recording_upstream(tmp_path_factory.mktemp("upstream")) as upstream:
        yield upstream


@pytest.fixture
def upstream(_session_upstream: RecordingUpstream) -> RecordingUpstream:
    """The recording upstream, with an empty record for this test."""
    _session_upstream.clear()
    _session_upstream.sse_release.clear()
    return _session_upstream


@pytest.fixture
def start_runtime(
    tmp_path: Path, factory: BundleFactory, upstream: RecordingUpstream
) -> Iterator[StartRuntime]:
    """Start runtimes on `tmp_path/bundles`; stop them after the test and scan for the canary.

    Every log line and every file of the state dir must be free of the secret.
    """
    started: list[RuntimeProcess] = []
    (tmp_path / "bundles").mkdir(exist_ok=True)

    def start(
        *extra: str, dev: bool = True, wait: bool = True, nofile: int | None = None
    ) -> RuntimeProcess:
        args = ["--identity", str(factory.identity), "--trust", factory.trust]
        if dev:
            args += [
                "--dev-resolve",
                upstream.dev_resolve(),
                "--dev-ca-cert",
                str(upstream.ca_file),
            ]
        runtime = RuntimeProcess(
            bundle_dir=tmp_path / "bundles",
            state_dir=tmp_path / "state",
            log_path=tmp_path / f"runtime-{len(started)}.log",
            args=[*args, *extra],
            nofile=nofile,
        )
        started.append(runtime)
        return runtime.start(wait=wait)

    yield start
    for runtime in started:
        runtime.stop()
    for runtime in started:
        assert CANARY not in runtime.log(), "the secret leaked into a log line"
    assert scan_tree(tmp_path / "state", CANARY) == [], "the secret leaked into the state dir"


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """The directory runtimes started by `start_runtime` watch."""
    path = tmp_path / "bundles"
    path.mkdir(exist_ok=True)
    return path
