"""Bundle load against the sops binary: 500 secret files, one credential each.

Three measurements on the same files:
- the runtime's loader in-process (`Loader.load`: signature and digests,
  serial rule, decryption of every secret the policy uses, `ActivePolicy.build`),
  median of several runs;
- decryption alone (`benchmarks.sops_decrypt.time_ours`) of the bundle's files;
- `sops -d` (the Go binary, `SOPS_DISABLE_VERSION_CHECK=1`) once per file.
Plus `serve`'s time to ready (process start → `/status` shows the serial).

    python -m benchmarks.bundle_load [--smoke]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aivault_ops.bundle.source import BundleRef
from aivault_ops.runtime.bundles.loader import Loader
from aivault_ops.sops import load_identities
from benchmarks import sops_decrypt
from benchmarks.bundles import Keys, big_project
from benchmarks.common import Processes, Stat, sops_binary
from benchmarks.stack import Tls, start_runtime


@dataclass(frozen=True)
class BundleLoadResult:
    """Seconds for each way of getting at the secrets."""

    files: int
    capabilities: int
    bundle_bytes: int
    loader: Stat
    decrypt_only: float
    sops_total: float
    sops_command: str
    serve_ready_s: float

    @property
    def ratio(self) -> float:
        """sops total / runtime load (median)."""
        return self.sops_total / self.loader.median


def time_loader(data: bytes, keys: Keys, runs: int) -> Stat:
    """Median of `runs` in-process loads of bundle serial 1."""
    identities = load_identities(keys.identity_file, environ={})
    loader = Loader((keys.signing_key.public_key,), identities, lambda: datetime.now(UTC))
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        loader.load(BundleRef(1, "bundle-1.tar.gz"), data, floor=None, active=None)
        samples.append(time.perf_counter() - start)
    return Stat.of(samples)


def extract_secrets(data: bytes, directory: Path) -> list[Path]:
    """The bundle's `secrets/…` entries, written to `directory`."""
    paths = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.name.startswith("secrets/") and member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                path = directory / Path(member.name).name
                path.write_bytes(handle.read())
                paths.append(path)
    return sorted(paths)


def time_sops(paths: list[Path], key_file: Path) -> float:
    """Seconds for one `sops -d` per file, sequentially."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env.update(SOPS_DISABLE_VERSION_CHECK="1", SOPS_AGE_KEY_FILE=str(key_file))
    binary = sops_binary()
    start = time.perf_counter()
    for path in paths:
        subprocess.run([binary, "-d", str(path)], env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def time_serve(workdir: Path, data: bytes, keys: Keys) -> float:
    """Seconds from starting `serve` to `/status` reporting the bundle."""
    (workdir / "load-bundles").mkdir()
    (workdir / "load-bundles" / "bundle-1.tar.gz").write_bytes(data)
    tls = Tls.create(workdir)
    processes = Processes()
    start = time.perf_counter()
    try:
        start_runtime(processes, workdir, name="load", keys=keys, tls=tls, upstream_port=9)
        return time.perf_counter() - start
    finally:
        processes.close()


def measure(workdir: Path, *, files: int, runs: int) -> BundleLoadResult:
    """Generate, compile and sign the project, then time the four ways."""
    keys = Keys.create(workdir)
    data = big_project(workdir / "repo", keys, files, files)
    loader = time_loader(data, keys, runs)
    secrets_dir = workdir / "extracted"
    secrets_dir.mkdir()
    paths = extract_secrets(data, secrets_dir)
    decrypt_only, _ = sops_decrypt.time_ours(paths, keys.identity_file)
    return BundleLoadResult(
        files=len(paths),
        capabilities=files,
        bundle_bytes=len(data),
        loader=loader,
        decrypt_only=decrypt_only,
        sops_total=time_sops(paths, keys.identity_file),
        sops_command=f"{sops_binary()} -d FILE",
        serve_ready_s=time_serve(workdir, data, keys),
    )


def render(result: BundleLoadResult) -> str:
    """One Markdown table and the ratio."""
    per = result.files
    sops_per = result.sops_total / per * 1000
    lines = [
        f"A bundle of {result.files} SOPS files (one credential and one capability each,"
        f" {result.bundle_bytes / 1024:,.0f} KiB), built by `compile` + signing.",
        "",
        "| what | total (s) | per file (ms) |",
        "|---|---:|---:|",
        f"| runtime `Loader.load` in-process (verify + decrypt + build), median (min–max)"
        f" | {result.loader.fmt(3)} | {result.loader.median / per * 1000:.2f} |",
        f"| decryption alone (`sops_decrypt.time_ours`, identities loaded once)"
        f" | {result.decrypt_only:.3f} | {result.decrypt_only / per * 1000:.2f} |",
        f"| `sops -d` once per file (`{Path(result.sops_command.split()[0]).name}`,"
        f" the Go binary) | {result.sops_total:.3f} | {sops_per:.2f} |",
        f"| `serve` start → bundle active (includes Python start-up)"
        f" | {result.serve_ready_s:.3f} | |",
        "",
        f"Ratio `sops -d` / runtime load: **{result.ratio:.1f}×** (target ≥ 10×).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> BundleLoadResult:
    """Run the benchmark standalone and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="5 files, one run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aivault-bench-") as tmp:
        result = measure(Path(tmp), files=5 if args.smoke else 500, runs=1 if args.smoke else 3)
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
