"""The Markdown report: machine, command, one table per benchmark, targets, analysis.

Every figure comes from the results of the run being rendered. The
hand-written analysis (`benchmarks/analysis.md`) is appended to full runs;
it may name values of this run as `{placeholders}` (see `_values`).
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    bulkhead,
    bundle_load,
    compile_profile,
    fleet,
    memory,
    profile,
    proxy,
    reload,
    soak,
)
from benchmarks import compile as compile_bench
from benchmarks.common import machine_description, percentile

ANALYSIS = Path(__file__).with_name("analysis.md")
MB = 1_000_000 / 1024 / 1024
TITLES = {
    "proxy": "Proxy throughput and latency",
    "reload": "Reload under load",
    "bundle_load": "Bundle load vs sops",
    "compile": "Compile scaling",
    "memory": "Memory",
    "fleet": "Fleet: registry propagation and shared rate limits",
    "bulkhead": "Bulkheads: a fast capability beside a saturated slow upstream",
    "soak": "Soak: load, reloads and a slow upstream",
}
Target = tuple[str, str, bool | None]


@dataclass
class Report:
    """Results by section name, the errors of sections that failed, durations."""

    command: str
    smoke: bool
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    machine: list[tuple[str, str]] = field(default_factory=machine_description)
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    load_end: str = ""
    rerendered: bool = False

    def finish(self) -> None:
        """Note the load average once every benchmark has run (the box is shared)."""
        self.load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def render(self) -> str:
        """The whole document."""
        parts = [self._head(), self._targets()]
        parts += [
            self._section(name) for name in TITLES if name in self.results or name in self.errors
        ]
        parts.append(self._profile())
        if not self.smoke and ANALYSIS.exists():
            template = string.Template(ANALYSIS.read_text())
            parts.append(template.safe_substitute(_values(self.results)))
        return "\n".join(parts)

    def _head(self) -> str:
        mode = (
            "**smoke run** (tiny sizes, ~1 s loads: the figures mean nothing)"
            if self.smoke
            else "full run"
        )
        lines = [
            "# Benchmarks",
            "",
            f"Written by `python -m benchmarks` ({mode}), started {self.started}. Command:",
            "",
            f"```sh\n{self.command}\n```",
            "",
            *(
                [
                    "The text was rendered again from that run's saved results (`--render-from`);"
                    " no figure changed.",
                    "",
                ]
                if self.rerendered
                else []
            ),
            "Everything runs on 127.0.0.1 on this one machine: the load generator, the",
            "upstream, the proxies. Each figure is a ratio against a baseline measured in",
            "the same run.",
            "",
            "| machine | |",
            "|---|---|",
        ]
        lines += [f"| {key} | {value} |" for key, value in self.machine]
        durations = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        lines += [
            "",
            f"Section durations: {durations}. Load average at the end: {self.load_end}.",
            "",
        ]
        return "\n".join(lines)

    def _targets(self) -> str:
        lines = ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
        for name, measured, met in targets(self.results):
            mark = "n/a" if met is None else ("yes" if met else "**no**")
            lines.append(f"| {name} | {measured} | {mark} |")
        return "\n".join(lines) + "\n"

    def _section(self, name: str) -> str:
        title = f"## {TITLES[name]}\n\n"
        if name in self.errors:
            return title + f"**Failed:**\n\n```\n{self.errors[name]}\n```\n"
        renderers: dict[str, Callable[[Any], str]] = {
            "proxy": proxy.render,
            "reload": reload.render,
            "bundle_load": bundle_load.render,
            "compile": _compile_render,
            "memory": memory.render,
            "fleet": fleet.render,
            "bulkhead": bulkhead.render,
            "soak": soak.render,
        }
        return title + renderers[name](self.results[name])

    def _profile(self) -> str:
        result = self.results.get("proxy")
        lines = ["## Where the time goes (profile)", ""]
        if result is None:
            return "\n".join(
                [*lines, "Not run (the profile is taken during the proxy benchmark).\n"]
            )
        if result.profile is None:
            return "\n".join([*lines, f"Not measured here: {result.profile_note}\n"])
        lines += [
            "py-spy on the 1-worker runtime while wrk drives 64 connections through the"
            " passthrough route.",
            "",
        ]
        return "\n".join(lines) + profile.render(result.profile)


CompileSection = tuple[list[compile_bench.Row], compile_profile.CompileProfile]


def _compile_render(section: CompileSection) -> str:
    intro = (
        "Validate + compile + canonical JSON + sign against bare libyaml parsing of the same"
        " manifests (`benchmarks/compile.py`), median of the runs.\n\n"
    )
    rows, where = section
    return intro + compile_bench.render(rows) + "\n" + compile_profile.render(where)


def targets(results: dict[str, Any]) -> list[Target]:
    """Every target of issue 7 with the measured value; None when not measured."""
    rows: list[Target] = []
    if "proxy" in results:
        rows += proxy.targets_met(results["proxy"])
    if "reload" in results:
        r: reload.ReloadResult = results["reload"]
        ok = r.load_failed == 0 and r.timeouts == 0
        measured = f"{r.load_failed} failed, {r.timeouts} not active"
        rows.append(("reload: 0 failed requests, every bundle active", measured, ok))
        if r.latencies:
            p50 = percentile([x * 1000 for x in r.latencies], 0.5)
            rows.append(
                (
                    "reload from a directory: publish → served p50 ≤ 100 ms",
                    f"{p50:.0f} ms",
                    p50 <= 100,
                )
            )
    if "fleet" in results:
        rows.append(_fleet_target(results["fleet"]))
    if "bulkhead" in results:
        rows.append(bulkhead.target(results["bulkhead"]))
    if "soak" in results:
        rows += soak.targets_met(results["soak"])
    if "bundle_load" in results:
        b: bundle_load.BundleLoadResult = results["bundle_load"]
        rows.append(
            ("bundle load ≥ 10× faster than `sops -d` per file", f"{b.ratio:.1f}×", b.ratio >= 10)
        )
    compiled: CompileSection | None = results.get("compile")
    rows += _compile_targets(compiled[0] if compiled else None)
    if "memory" in results:
        m: memory.MemoryResult = results["memory"]
        label = f"idle RSS with a {m.capabilities:,}-capability bundle ≤ 80 MB"
        mb = m.big_idle / MB
        rows.append(
            (
                label,
                f"{mb:.1f} MB ({m.big_idle:.1f} MiB)",
                mb <= 80 if m.capabilities >= 10_000 else None,
            )
        )
    return rows


def _fleet_target(f: fleet.FleetResult) -> Target:
    label = f"registry: publish → all {f.runtimes} runtimes serving p50 ≤ poll interval + 100 ms"
    if not f.all_serving:
        return (label, "no publish reached every runtime", False)
    p50 = percentile([x * 1000 for x in f.all_serving], 0.5)
    bound = f.poll_interval * 1000 + 100
    return (label, f"{p50:.0f} ms (interval {f.poll_interval:g} s)", p50 <= bound)


def _compile_targets(rows: list[compile_bench.Row] | None) -> list[Target]:
    if rows is None:
        return []
    big = [r for r in rows if r.capabilities >= 10_000]
    if not big:
        return [
            (
                "compile 10k capabilities < 2 s and ≤ 3× the YAML parse",
                "not measured in this run (smoke sizes)",
                None,
            )
        ]
    row = big[0]
    return [
        ("compile 10k capabilities < 2 s", f"{row.compile_s:.2f} s", row.compile_s < 2),
        ("compile ≤ 3× the bare YAML parse (10k)", f"{row.ratio:.2f}×", row.ratio <= 3),
    ]


def _values(results: dict[str, Any]) -> dict[str, str]:
    """Figures of this run the analysis text may use as `$name`."""
    values: dict[str, str] = {}
    p: proxy.ProxyResult | None = results.get("proxy")
    if p is not None:
        values.update(_proxy_values(p))
    m: memory.MemoryResult | None = results.get("memory")
    if m is not None:
        values.update(
            mem_floor=f"{m.small_idle:.1f}", mem_big=f"{m.big_idle:.1f}",
            mem_bundle=f"{m.big_idle - m.small_idle:.1f}", mem_trim=f"{m.trimmed_idle:.1f}",
            mem_retained=f"{m.retained_mb:.1f}", mem_big_mb=f"{m.big_idle / MB:.1f}",
        )  # fmt: skip
    compiled: CompileSection | None = results.get("compile")
    big = [r for r in (compiled[0] if compiled else []) if r.capabilities >= 10_000]
    if big:
        values.update(compile_10k=f"{big[0].compile_s:.2f}", compile_ratio=f"{big[0].ratio:.2f}")
    b: bundle_load.BundleLoadResult | None = results.get("bundle_load")
    if b is not None:
        values.update(
            bundle_ratio=f"{b.ratio:.1f}",
            bundle_loader_ms=f"{b.loader.median / b.files * 1000:.2f}",
            bundle_decrypt_ms=f"{b.decrypt_only / b.files * 1000:.2f}",
            bundle_sops_ms=f"{b.sops_total / b.files * 1000:.2f}",
        )
    r: reload.ReloadResult | None = results.get("reload")
    if r is not None and r.latencies:
        values["reload_p50"] = f"{percentile([x * 1000 for x in r.latencies], 0.5):.0f}"
    f: fleet.FleetResult | None = results.get("fleet")
    if f is not None:
        values.update(_fleet_values(f))
    return values


def _fleet_values(f: fleet.FleetResult) -> dict[str, str]:
    ms = [x * 1000 for x in f.all_serving]
    values = {"fleet_interval": f"{f.poll_interval:g}"}
    if ms:
        values.update(
            fleet_p50=f"{percentile(ms, 0.5):.0f}", fleet_p95=f"{percentile(ms, 0.95):.0f}"
        )
    for label, key in (("redis", "redis"), ("in-process", "local")):
        if label in f.requests:
            values[f"rl_{key}_request"] = f"{f.requests[label].client_cpu_us:.0f}"
        if label in f.checks:
            values[f"rl_{key}_check"] = f"{f.checks[label].client_cpu_us:.1f}"
    if "redis" in f.checks:
        values["rl_redis_server"] = f"{f.checks['redis'].server_cpu_us:.1f}"
    return values


def _proxy_values(p: proxy.ProxyResult) -> dict[str, str]:
    c = p.stat("c", 64, "rps").median
    best = max(c, p.stat("c2", 64, "rps").median)
    a1 = p.stat("a", 1, "p50_ms").median
    values = {
        "c_rps": f"{c:,.0f}",
        "c2_rps": f"{p.stat('c2', 64, 'rps').median:,.0f}",
        "d_rps": f"{p.stat('d', 64, 'rps').median:,.0f}",
        "b_rps": f"{p.stat('b', 64, 'rps').median:,.0f}",
        "rps_gap": f"{10_000 / best:.1f}",
        "added_ms": f"{p.stat('c', 1, 'p50_ms').median - a1:.3f}",
        "d_added_ms": f"{p.stat('d', 1, 'p50_ms').median - a1:.3f}",
    }
    present = [k for k in proxy.VARIANTS if (k, 64) in p.samples]
    for key in ("a", "b", "c", "c2", "d", *present):
        per_request = p.cpu_stat(key, 64, 1).median
        values[f"{key}_cpu"] = f"{per_request:,.0f}"
        values[f"{key}_cores"] = f"{p.cpu_stat(key, 64, 0).median:.2f}"
        values[f"{key}_cores_needed"] = f"{per_request * 10_000 / 1e6:.1f}"
    c_cpu = p.cpu_stat("c", 64, 1).median
    for key in present:
        values[f"{key}_cpu_gain"] = f"{c_cpu / p.cpu_stat(key, 64, 1).median:.2f}"
        values[f"{key}_gain"] = f"{p.stat(key, 64, 'rps').median / c:.2f}"
        values[f"{key}_rps"] = f"{p.stat(key, 64, 'rps').median:,.0f}"
        values[f"{key}_added"] = f"{p.stat(key, 1, 'p50_ms').median - a1:.3f}"
    if p.profile is not None:
        values.update(_shares(p.profile))
    return values


def _shares(result: profile.Profile) -> dict[str, str]:
    """Inclusive shares of a few functions, as `share_<name>`."""
    wanted = {
        "audit": "Runtime._audited (aivault_ops/runtime/http/server.py)",
        "prepare": "ActivePolicy.prepare (aivault_ops/runtime/policy/active.py)",
        "passthrough": (
            "ActivePolicy.authorize_passthrough (aivault_ops/runtime/policy/active.py)"
        ),
        "authenticate": "ActivePolicy.authenticate (aivault_ops/runtime/policy/active.py)",
        "upstream_open": "Http1Upstream.open (aivault_ops/runtime/upstream/client.py)",
        "handle": "Runtime.handle (aivault_ops/runtime/http/server.py)",
        "whole_body": "whole_body (aivault_ops/runtime/response/body.py)",
        "now": "_now (aivault_ops/runtime/wiring.py)",
    }
    return {
        f"share_{key}": result.share(result.inclusive.get(name, 0)) for key, name in wanted.items()
    }
