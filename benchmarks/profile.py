"""Where the runtime's time goes under load: py-spy on the live process.

`py-spy record --format raw` writes collapsed stacks (`frame;frame;… count`).
py-spy leaves out most idle samples (a thread blocked in a syscall); only the
event-loop (main) thread is aggregated, so shares are of the time the loop
thread was busy; samples of other threads (bundle watcher, reload poll,
resolver pool) are only counted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


class ProfileUnavailable(Exception):
    """py-spy is missing or may not attach here (ptrace)."""


@dataclass(frozen=True)
class Profile:
    """Aggregated samples: per function self and inclusive counts, per package self counts."""

    total: int
    other_threads: int
    other_counts: Counter[str]
    self_counts: Counter[str]
    inclusive: Counter[str]
    packages: Counter[str]

    def share(self, count: int) -> str:
        """`count` as a percentage of all samples."""
        return f"{100 * count / max(1, self.total):.1f} %"


def _short_file(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _package(path: str) -> str:
    short = _short_file(path)
    if short.startswith("aivault_ops/"):
        return short.removesuffix(".py").replace("/", ".")
    head = short.split("/", 1)[0].removesuffix(".py")
    return head or "?"


def _name(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), "?"
    file = _short_file(match.group("file"))
    return f"{match.group('func')} ({file})", match.group("file")


def parse(text: str) -> Profile:
    """Aggregate py-spy's raw (collapsed) output."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    others: Counter[str] = Counter()
    total = other = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if stack.startswith("Thread._bootstrap "):
            other += count
            others[_name(stack.rsplit(";", 1)[-1])[0]] += count
            continue
        frames = [_name(f) for f in stack.split(";")]
        total += count
        self_counts[frames[-1][0]] += count
        packages[_package(frames[-1][1])] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
    return Profile(total, other, others, self_counts, inclusive, packages)


def record(pid: int, seconds: float, out: Path, load: Callable[[], object]) -> Profile:
    """Sample `pid` for `seconds` while `load()` runs; ProfileUnavailable if py-spy cannot."""
    if shutil.which("py-spy") is None:
        raise ProfileUnavailable("py-spy is not installed (pip install py-spy)")
    command = ["py-spy", "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", "250", "--format", "raw", "--output", str(out)]
    spy = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        load()
        _, err = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait(timeout=5)
    if spy.returncode != 0 or not out.exists():
        raise ProfileUnavailable(f"py-spy failed ({spy.returncode}): {err.strip()[-300:]}")
    return parse(out.read_text())


def render(result: Profile, top: int = 15) -> str:
    """Three small tables: packages by self time, functions by self time, our functions
    by inclusive time."""
    lines = [
        f"{result.total:,} busy samples of the event-loop thread (py-spy, 250 Hz);"
        f" {result.other_threads:,} samples of other threads left out. The self time of"
        " `Runner.run` is time inside uvloop's C code (socket reads/writes, polling,"
        " callbacks), which py-spy cannot see into.",
        "",
    ]
    lines += ["| package / module (self time) | share |", "|---|---:|"]
    lines += [f"| `{name}` | {result.share(n)} |" for name, n in result.packages.most_common(top)]
    lines += ["", "| function (self time) | share |", "|---|---:|"]
    lines += [
        f"| `{name}` | {result.share(n)} |" for name, n in result.self_counts.most_common(top)
    ]
    outer = ("main (", "run_serve (", "<module> (", "serve_forever (")
    ours = [
        (n, c)
        for n, c in result.inclusive.most_common()
        if "aivault_ops/" in n and not n.startswith(outer)
    ]
    lines += ["", "| aivault_ops function (inclusive time) | share |", "|---|---:|"]
    lines += [f"| `{name}` | {result.share(n)} |" for name, n in ours[: top + 10]]
    lines += ["", "| other threads: function (self samples) | samples |", "|---|---:|"]
    lines += [f"| `{name}` | {n:,} |" for name, n in result.other_counts.most_common(5)]
    return "\n".join(lines) + "\n"
