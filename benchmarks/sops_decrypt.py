"""Benchmark: decrypt N SOPS files in one process vs one `sops -d` per file.

    python benchmarks/sops_decrypt.py            # 500 files
    python benchmarks/sops_decrypt.py --smoke    # 5 files, for CI

Files are written by aivault_ops (YAML, five secrets each, one age recipient);
both sides decrypt the same files and the outputs are compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

from aivault_ops.sops import (
    EncryptionRule,
    KeyPlan,
    decrypt_file,
    encrypt_plaintext,
    load_identities,
)
from aivault_ops.sops.stores import parse_plaintext
from aivault_ops.sops.tree import to_python


def make_files(directory: Path, count: int, recipient: str) -> list[Path]:
    plan = KeyPlan(((recipient,),))
    paths = []
    for index in range(count):
        plain = (
            f"OPENAI_API_KEY: sk-test-{index:04d}-{'x' * 40}\n"
            f"STRIPE_SECRET_KEY: rk_test_{index:04d}{'y' * 30}\n"
            f"db:\n  username: app{index}\n  password: pw-{index}-{'z' * 20}\n  port: 5432\n"
            "enabled: true\n"
        )
        path = directory / f"s{index:04d}.sops.yaml"
        path.write_bytes(
            encrypt_plaintext(plain.encode(), format_="yaml", plan=plan, rule=EncryptionRule())
        )
        paths.append(path)
    return paths


def time_ours(paths: list[Path], key_file: Path) -> tuple[float, list[object]]:
    start = time.perf_counter()
    identities = load_identities(key_file, environ={"HOME": "/nonexistent"})
    results = []
    for path in paths:
        decrypted = decrypt_file(path, identities)
        decrypted.secrets()
        results.append([to_python(doc) for doc in decrypted.documents])
    return time.perf_counter() - start, results


def time_sops(paths: list[Path], key_file: Path) -> tuple[float, list[object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env.update(SOPS_DISABLE_VERSION_CHECK="1", SOPS_AGE_KEY_FILE=str(key_file))
    start = time.perf_counter()
    outputs = [
        subprocess.run(["sops", "-d", str(p)], env=env, capture_output=True, check=True).stdout
        for p in paths
    ]
    elapsed = time.perf_counter() - start
    return elapsed, [
        [to_python(doc) for doc in parse_plaintext(out, "yaml", "sops -d")] for out in outputs
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="5 files (CI)")
    args = parser.parse_args()
    count = 5 if args.smoke else args.files
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        identity = pyrage.x25519.Identity.generate()
        key_file = directory / "key.txt"
        key_file.write_text(f"{identity}\n")
        paths = make_files(directory, count, str(identity.to_public()))
        ours, our_values = time_ours(paths, key_file)
        theirs, their_values = time_sops(paths, key_file)
    if our_values != their_values:
        print("MISMATCH: decrypted values differ", file=sys.stderr)
        return 1
    machine = f"{platform.platform()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"files: {count} (YAML, 6 values each, one age recipient)")
    print(f"aivault_ops, one process: {ours:.3f} s total, {ours / count * 1000:.2f} ms/file")
    print(f"sops -d per file:         {theirs:.3f} s total, {theirs / count * 1000:.2f} ms/file")
    print(f"ratio (sops / ours): {theirs / ours:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
