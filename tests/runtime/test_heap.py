"""Returning freed heap pages to the OS, and glibc's malloc parameters set at start."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import subprocess
import sys
import weakref

import pytest

from aivault_ops.runtime import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_returns_freed_pages() -> None:
    assert heap.release_free_memory() is True


def test_releasing_frees_garbage_cycles_at_once() -> None:
    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    gone = weakref.ref(node)
    gc.disable()  # no automatic collection may do it instead
    try:
        del node
        assert gone() is not None
        heap.release_free_memory()
        assert gone() is None
    finally:
        gc.enable()


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoTrim:
        def __init__(self, name: object) -> None:
            self.name = name

    monkeypatch.setattr(ctypes, "CDLL", NoTrim)
    heap._libc_function.cache_clear()
    try:
        assert heap.release_free_memory() is False
    finally:
        heap._libc_function.cache_clear()


def test_a_periodic_trim_runs_only_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[float] = []
    now = [100.0]
    monkeypatch.setattr(heap, "release_free_memory", lambda: trims.append(now[0]) or True)
    trim = heap.PeriodicTrim(every_s=10.0, clock=lambda: now[0])
    for moment in (101.0, 109.9, 110.0, 115.0, 119.9, 120.0):
        now[0] = moment
        trim.tick()
    assert trims == [110.0, 120.0]


GLIBC = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
# In a fresh interpreter: free one 4 MiB block (glibc served it with mmap), then ask
# for 512 KiB and say whether that block was mmapped too (mallinfo2's hblkhd grew).
_PROBE = """
import ctypes, os, sys
from aivault_ops.runtime import heap
if sys.argv[1] == "pin":
    assert heap.pin_allocator(os.environ)
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = Info
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(512 << 10)
print("mmapped" if libc.mallinfo2().hblkhd - before >= 512 << 10 else "heap")
"""


def _where_512_kib_goes(mode: str) -> str:
    variables = {setting.variable for setting in heap.ALLOCATOR_SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in variables}
    env.pop("GLIBC_TUNABLES", None)
    run = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    return run.stdout.strip()


@GLIBC
def test_pinned_thresholds_keep_large_blocks_off_the_heap() -> None:
    # glibc on its own raises the threshold to 4 MiB after the free: the heap serves it
    assert _where_512_kib_goes("default") == "heap"
    assert _where_512_kib_goes("pin") == "mmapped"


@pytest.mark.parametrize(
    ("environ", "left"),
    [
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, "mmap_threshold"),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "trim_threshold"),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}, "mmap_threshold"),
        ({"GLIBC_TUNABLES": "glibc.rtld.nns=2:glibc.malloc.trim_threshold=1"}, "trim_threshold"),
        ({"MALLOC_TOP_PAD_": "131072"}, "top_pad"),
    ],
)
def test_the_operators_malloc_settings_win(
    environ: dict[str, str], left: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(heap, "_libc_function", lambda name: lambda *a: calls.append(a) or 1)
    every = tuple(setting.tunable for setting in heap.ALLOCATOR_SETTINGS)
    assert heap.pin_allocator(environ) == tuple(name for name in every if name != left)
    [skipped] = [s for s in heap.ALLOCATOR_SETTINGS if s.tunable == left]
    assert (skipped.parameter, skipped.value) not in calls
    assert len(calls) == len(heap.ALLOCATOR_SETTINGS) - 1


def test_other_settings_are_not_the_operators_malloc_tuning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap, "_libc_function", lambda name: lambda *a: 1)
    environ = {"GLIBC_TUNABLES": "glibc.rtld.nns=2", "MALLOC_ARENA_MAX": "2"}
    assert len(heap.pin_allocator(environ)) == len(heap.ALLOCATOR_SETTINGS)


# In a fresh interpreter: watchdog watches a directory while bundles are published into
# it one after another (each waited for); then the resident KiB of the glibc arena of
# watchdog's inotify reader thread.
_INOTIFY_PROBE = """
import ctypes, os, sys, tempfile, threading
from aivault_ops.runtime import heap
if sys.argv[1] == "pin":
    assert "top_pad" in heap.pin_allocator(os.environ)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
arenas = {}
start = threading.Thread._bootstrap_inner
def noted(thread):
    block = libc.malloc(2048)
    arenas[type(thread).__name__] = block & ~((64 << 20) - 1)  # a thread arena's heap start
    libc.free(block)
    start(thread)
threading.Thread._bootstrap_inner = noted
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
seen = threading.Semaphore(0)
class Count(FileSystemEventHandler):
    def on_moved(self, event):
        seen.release()
directory = tempfile.mkdtemp()
observer = Observer()
observer.schedule(Count(), directory)
observer.start()
for n in range(int(sys.argv[2])):
    tmp = os.path.join(directory, ".tmp")
    with open(tmp, "wb") as f:
        f.write(b"x" * 3000)
    os.rename(tmp, os.path.join(directory, f"bundle-{n}"))
    if n >= 3:
        os.unlink(os.path.join(directory, f"bundle-{n - 3}"))
    assert seen.acquire(timeout=30)
base = arenas["InotifyFD"]
resident = 0
with open("/proc/self/smaps") as smaps:
    inside = False
    for line in smaps:
        field = line.split()
        if "-" in field[0] and not field[0].endswith(":"):
            inside = base <= int(field[0].split("-")[0], 16) < base + (64 << 20)
        elif field[0] == "Rss:" and inside:
            resident += int(field[1])
observer.stop(); observer.join()
print(resident)
"""


@GLIBC
def test_the_bundle_watcher_s_arena_stays_small() -> None:
    """glibc's top pad left room in the reader thread's arena for its 64 KiB read buffer,
    carved a little further along each time: 8 → 44 KiB over 400 bundles."""
    variables = {setting.variable for setting in heap.ALLOCATOR_SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in variables}
    env.pop("GLIBC_TUNABLES", None)
    run = subprocess.run([sys.executable, "-c", _INOTIFY_PROBE, "pin", "400"], env=env,
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert int(run.stdout) <= 16


def test_without_mallopt_nothing_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_libc_function", lambda name: None)
    assert heap.pin_allocator({}) == ()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "glibc.malloc.tcache_count=0"),
        ({"GLIBC_TUNABLES": "glibc.rtld.nns=2"}, "glibc.rtld.nns=2:glibc.malloc.tcache_count=0"),
        ({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"}, None),  # the operator's size wins
        ({"GLIBC_TUNABLES": "glibc.rtld.nns=2:glibc.malloc.tcache_count=3"}, None),
        ({heap.RESTARTED_MARK: "1"}, None),  # restarted once already: never again
    ],
)
def test_the_tunables_a_restart_adds(environ: dict[str, str], expected: str | None) -> None:
    assert heap.tunables_without_tcache(environ) == expected


# In a fresh interpreter: say who we are, restart without the per-thread cache (or not),
# then let a long-lived helper thread free 7 blocks of each size the cache takes and
# report the bytes glibc still counts as in use while that thread lives.
_TCACHE_PROBE = """
import ctypes, os, threading
from aivault_ops.runtime import heap
print("start", os.getpid(), os.environ.get("GLIBC_TUNABLES", ""), flush=True)
heap.restart_without_tcache(os.environ)
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def helper():
    before = libc.mallinfo2().uordblks
    blocks = [libc.malloc(size) for size in range(16, 1024, 16) for _ in range(7)]
    for block in blocks:
        libc.free(block)
    del blocks
    print("kept", libc.mallinfo2().uordblks - before, flush=True)
thread = threading.Thread(target=helper)
thread.start()
thread.join()
"""


def _tcache_probe(**set_env: str) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", heap.RESTARTED_MARK)}
    run = subprocess.run([sys.executable, "-c", _TCACHE_PROBE], env={**env, **set_env},
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return [line.split(" ") for line in run.stdout.splitlines()]


@GLIBC
def test_the_restart_turns_the_per_thread_cache_off_in_the_same_process() -> None:
    first, again, kept = _tcache_probe()
    assert first[:2] == again[:2] and first[0] == "start"  # the same pid, run twice
    assert again[2] == "glibc.malloc.tcache_count=0"
    assert kept[0] == "kept" and int(kept[1]) < 16 * 1024


@GLIBC
def test_with_the_operator_s_cache_size_the_process_keeps_its_cache() -> None:
    first, kept = _tcache_probe(GLIBC_TUNABLES="glibc.malloc.tcache_count=7")
    assert first[0] == "start" and first[2] == "glibc.malloc.tcache_count=7"
    assert int(kept[1]) > 100 * 1024  # what a live thread's cache holds on to


class _Exec:
    """Stands in for `os.execve`: records the call, or refuses it."""

    def __init__(self, error: OSError | None = None) -> None:
        self.calls: list[tuple[str, list[str], dict[str, str]]] = []
        self.error = error

    def __call__(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        self.calls.append((path, argv, env))
        if self.error is not None:
            raise self.error


def test_the_restart_execs_this_very_command_with_the_tunable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    execve = _Exec()
    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(os, "confstr", lambda name: "glibc 2.36")
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "aivault_ops", "serve"])
    heap.restart_without_tcache({"HOME": "/root"})
    [(path, argv, env)] = execve.calls
    assert (path, argv) == (sys.executable, ["python", "-m", "aivault_ops", "serve"])
    assert env == {
        "HOME": "/root",
        "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
        heap.RESTARTED_MARK: "1",
    }


@pytest.mark.parametrize(
    "case", ["operator's size", "not glibc", "frozen", "no interpreter path", "exec refused"]
)
def test_without_a_restart_serve_goes_on_as_started(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    execve = _Exec(OSError(7, "Argument list too long") if case == "exec refused" else None)
    monkeypatch.setattr(os, "execve", execve)
    environ = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"} if case == "operator's size" else {}

    def confstr(name: str) -> str:
        if case == "not glibc":
            raise ValueError(name)
        return "glibc 2.36"

    monkeypatch.setattr(os, "confstr", confstr)
    if case == "frozen":
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    if case == "no interpreter path":
        monkeypatch.setattr(sys, "executable", "")
    heap.restart_without_tcache(environ)  # returns: the caller carries on
    assert len(execve.calls) == (1 if case == "exec refused" else 0)
