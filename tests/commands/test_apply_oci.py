"""apply → a real registry (Debian's docker-registry) → runtimes; plan and verify on oci://."""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
from pathlib import Path

import httpx
from cli_support import InitProject, make_project, run_cli
from support.engines import Registry
from support.fixtures import _session_upstream, upstream
from support.fleet import Fleet, SteadyLoad, dev_args
from support.runtime_proc import wait_until
from support.upstream import RecordingUpstream

__all__ = ["_session_upstream", "upstream"]


def apply(project: InitProject, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "apply", project.root, "--target", target, "--plain-http",
        "--signing-key", project.signing_key, *extra, cwd=project.workdir,
    )  # fmt: skip


def allow_post(project: InitProject) -> None:
    capability = project.root / "capabilities" / "example-api.yaml"
    capability.write_text(capability.read_text().replace("methods: [GET]", "methods: [GET, POST]"))


def test_a_second_apply_reaches_both_runtimes_without_a_failed_request(
    tmp_path: Path, registry: Registry, upstream: RecordingUpstream
) -> None:
    project = make_project(tmp_path / "project")
    target = registry.url("fleet/apply")

    first = apply(project, target, "--revision", "r1")
    assert first.returncode == 0, first.stdout + first.stderr
    fleet = Fleet(
        tmp_path,
        f"{target}:latest",
        ["--identity", str(project.identity), "--trust", project.public_key, *dev_args(upstream)],
    )
    try:
        runtimes = [fleet.start("a"), fleet.start("b")]
        for runtime in runtimes:
            runtime.wait_serial(1)
        headers = {"Authorization": f"Bearer {project.token}"}
        urls = [f"{runtime.url}/v/example-api/v1/items" for runtime in runtimes]
        with SteadyLoad(urls, headers) as load:
            allow_post(project)
            second = apply(project, target, "--revision", "r2")
            assert second.returncode == 0, second.stdout + second.stderr
            for runtime in runtimes:
                runtime.wait_serial(2)
            wait_until(lambda: load.ok > 20, what="requests under load")
        assert load.failed == []
        for runtime in runtimes:
            assert (
                httpx.post(runtime.url + "/v/example-api/v1/items", headers=headers).status_code
                == 200
            )
            source = runtime.status()["bundleSource"]
            assert source["reference"] == f"{target}:latest"
            assert source["error"] is None and source["digest"].startswith("sha256:")
    finally:
        fleet.stop()


def test_plan_and_verify_read_the_registry(tmp_path: Path, registry: Registry) -> None:
    project = make_project(tmp_path / "project")
    target = registry.url("cli/plan")
    plan = run_cli("plan", project.root, "--target", target, "--plain-http", cwd=project.workdir)
    assert plan.returncode == 2 and "Comparing against: nothing published yet" in plan.stdout
    dry = apply(project, target, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == f"Dry run: would publish {target}:serial-1"
    tags = httpx.get(f"http://127.0.0.1:{registry.port}/v2/cli/plan/tags/list")
    assert tags.status_code == 404  # nothing written, not even a lock tag
    published = apply(project, target, "--revision", "r1")
    assert published.returncode == 0, published.stderr
    assert re.search(
        rf"^Published {re.escape(target)}:serial-1 \(latest → sha256:[0-9a-f]{{64}}\)"
        r" \(serial 1, revision r1\)$",
        published.stdout,
        re.MULTILINE,
    ), published.stdout
    plan = run_cli("plan", project.root, "--target", target, "--plain-http", cwd=project.workdir)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert plan.stdout.splitlines()[:2] == [
        "Comparing against: serial-1 (revision r1)",
        "No changes.",
    ]
    for reference in (f"{target}:latest", f"{target}@serial-1", f"{target}:serial-1"):
        verify = run_cli(
            "verify", reference, "--plain-http", "--trust", project.public_key, cwd=tmp_path
        )
        assert verify.returncode == 0, verify.stderr
        assert verify.stdout.splitlines()[:2] == [f"{reference}: OK", "  serial:      1"]


def test_concurrent_applies_never_share_a_serial(tmp_path: Path, registry: Registry) -> None:
    project = make_project(tmp_path / "project")
    target = registry.url("cli/concurrent")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        runs = list(
            pool.map(lambda n: apply(project, target, "--always", "--revision", f"r{n}"), range(3))
        )
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    serials = sorted(int(re.findall(r"\(serial (\d+),", run.stdout)[0]) for run in runs)
    assert serials == [1, 2, 3]
    tags = httpx.get(f"http://127.0.0.1:{registry.port}/v2/cli/concurrent/tags/list").json()["tags"]
    assert sorted(tags) == ["latest", "serial-1", "serial-2", "serial-3"]


def test_credentials_on_the_command_line_and_plain_http_elsewhere_are_refused(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "project")
    refused = apply(project, "oci://robot:s3cret-pass@127.0.0.1:5000/a")
    assert refused.returncode == 2
    assert "credentials do not belong in a reference" in refused.stderr
    assert "s3cret-pass" not in refused.stderr + refused.stdout
    remote = apply(project, "oci://10.0.0.1:5000/a")
    assert remote.returncode == 2
    assert "--plain-http: 10.0.0.1:5000 is not a loopback address" in remote.stderr
