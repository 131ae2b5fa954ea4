"""`python -m benchmarks [--smoke] [--only proxy,reload,…] [--minutes N] [--out BENCHMARKS.md]`.

Runs the selected benchmarks one after the other (loopback only, bounded
loads, every process stopped, temp dirs removed) and writes one Markdown
report. `--smoke` uses tiny sizes and ~1 s loads for CI and asserts nothing
about timing. Exit status 1 if any benchmark failed (its section says why).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    bulkhead,
    bundle_load,
    compile_profile,
    fleet,
    memory,
    proxy,
    reload,
    report,
    soak,
)
from benchmarks import compile as compile_bench
from benchmarks.common import Processes, have_tools, in_tmp

SECTIONS = ("proxy", "reload", "bundle_load", "compile", "memory", "fleet", "bulkhead", "soak")


def _runners(smoke: bool, minutes: float = 12.0) -> dict[str, Callable[[], Any]]:
    duration, runs = (1.0, 1) if smoke else (5.0, 3)

    def run_proxy(workdir: Path, processes: Processes) -> Any:
        variants = proxy.SMOKE_VARIANTS if smoke else tuple(proxy.VARIANTS)
        return proxy.measure(workdir, processes, duration_s=duration, runs=runs, variants=variants)

    def run_reload(workdir: Path, processes: Processes) -> Any:
        return reload.measure(workdir, processes, bundles=5 if smoke else 100)

    def run_bundle_load(workdir: Path, _: Processes) -> Any:
        return bundle_load.measure(workdir, files=5 if smoke else 500, runs=runs)

    def run_memory(workdir: Path, processes: Processes) -> Any:
        capabilities, files = (20, 2) if smoke else (10_000, 500)
        return memory.measure(
            workdir, processes, capabilities=capabilities, files=files, duration_s=duration
        )

    def run_fleet(workdir: Path, processes: Processes) -> Any:
        return fleet.measure(workdir, processes, publishes=3 if smoke else 20, interval=1.0)

    def run_soak(workdir: Path, processes: Processes) -> Any:
        settings = soak.Settings.of(minutes, smoke=smoke, slow=True)
        return soak.measure(workdir, processes, settings)

    return {
        "soak": lambda: in_tmp(run_soak),
        "fleet": lambda: in_tmp(run_fleet),
        "proxy": lambda: in_tmp(run_proxy),
        "reload": lambda: in_tmp(run_reload),
        "bundle_load": lambda: in_tmp(run_bundle_load),
        "compile": lambda: (
            compile_bench.main(["--smoke"] if smoke else ["--runs", "3"]),
            compile_profile.main(["--smoke"] if smoke else []),
        ),
        "memory": lambda: in_tmp(run_memory),
        "bulkhead": lambda: in_tmp(lambda w, p: bulkhead.measure(w, p, smoke=smoke)),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--smoke, --only, --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, ~1 s loads (CI)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument(
        "--minutes", type=float, default=12.0, help="soak length (smoke: three 10 s windows)"
    )
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="report file")
    parser.add_argument(
        "--save-results", type=Path, metavar="PICKLE", help="also keep the raw results here"
    )
    parser.add_argument(
        "--render-from", type=Path, metavar="PICKLE",
        help="write the report from results saved by an earlier run (measures nothing)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, write the report, exit 0 when every selected benchmark ran."""
    args = parse_args(argv)
    if args.render_from is not None:
        saved: report.Report = pickle.loads(args.render_from.read_bytes())
        saved.rerendered = True
        args.out.write_text(saved.render())
        print(f"wrote {args.out} from {args.render_from}", file=sys.stderr)
        return 0
    missing = have_tools("nginx", "wrk")
    if "fleet" in args.sections:
        missing += have_tools("docker-registry", "redis-server", "nginx", "wrk")
    if missing and {"proxy", "reload", "memory", "fleet", "bulkhead", "soak"} & set(args.sections):
        tools = ", ".join(sorted(set(missing)))
        print(f"missing tools: {tools} (apt-get install {tools})", file=sys.stderr)
        return 1
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    document = report.Report(command=command.strip(), smoke=args.smoke)
    runners = _runners(args.smoke, args.minutes)
    failed = False
    for name in args.sections:
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            document.results[name] = runners[name]()
        except Exception:
            failed = True
            document.errors[name] = traceback.format_exc(limit=8)
            print(document.errors[name], file=sys.stderr)
        document.seconds[name] = time.monotonic() - started
    document.finish()
    if args.save_results is not None:
        args.save_results.write_bytes(pickle.dumps(document))
    args.out.write_text(document.render())
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
