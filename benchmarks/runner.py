"""The runner: every case of every workload, interleaved, in fresh processes; then the report.

Within a repeat the cases of a workload run one after another, in an order rotated by one each
repeat, so slow drifts of the machine spread over all cases; every ratio in the report is taken
between medians of the same run. Each run starts a fresh server and client on 127.0.0.1 (the
server picks a free port) and stops both by pid when it ends, even on error. Then every
standalone module ``benchmarks/case_*.py`` runs as ``python -m benchmarks.<name> [--smoke]``;
its standard output, a markdown section, goes into the report, and a non-zero exit fails the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from . import _mcp130env, report
from ._process import Peer, PeerError, RssSampler, raise_fd_limit, rss, stop_all
from ._spec import HOLDING, PAYLOADS, READY, RESULT, WARM, Plan, Results, percentile
from ._summary import PACKAGES, Summary

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "benchmarks" / "results"
DOCS_IMG: Final = ROOT / "docs" / "img"
SMOKE_OUT: Final = ROOT / ".bench" / "smoke"
LOGS: Final = ROOT / ".bench" / "logs"

# Seconds a server may take to print READY (the SDK 1.30 stack imports a lot).
SERVER_START: Final = 60.0
# Seconds beyond a driver's own budget before the runner gives up on it.
SLACK: Final = 30.0
# A standalone case's bound: a full one may take a while, a smoke one must not.
STANDALONE_TIMEOUT: Final = {False: 1800.0, True: 120.0}
# File descriptors: 1,000 client and 1,000 server sockets, and slack.
WANTED_FDS: Final = 8192


@dataclass(frozen=True)
class Case:
    """A transport under test: its peer module, server kind and client stack."""

    key: str
    label: str
    module: str
    server: str
    client: str
    sdk130: bool = False


CASES: Final = (
    Case("ours", "trio-mcp-ws (ours)", "stack_ours", "echo", "ours"),
    Case("tws", "raw trio-websocket, 64 KiB buffer", "stack_tws", "echo", "tws"),
    Case("websockets", "raw websockets (asyncio)", "stack_websockets", "echo", "websockets"),
    Case("mcp130", "mcp 1.30, its defaults (deflate)", "stack_mcp130", "echo", "mcp130", sdk130=True),
    Case(
        "mcp130-plain", "mcp 1.30, compression off", "stack_mcp130", "echo-plain", "mcp130-plain", sdk130=True
    ),
)
CALL_CASES: Final = (
    Case("ours", "trio-mcp-ws (ours)", "stack_ours", "mcp", "ours"),
    Case("ours-legacy", "trio-mcp-ws (ours), initialize era", "stack_ours", "mcp", "ours-legacy"),
    Case("mcp130", "mcp 1.30, its defaults (deflate)", "stack_mcp130", "mcp", "mcp130", sdk130=True),
)
WORKLOADS: Final = ("echo", "calls", "concurrency", "idle", "standalone")


class Runner:
    """Runs the cases and fills a `Summary`."""

    def __init__(self, summary: Summary, *, cases: set[str], workloads: set[str], pin: bool) -> None:
        self.summary = summary
        self.cases = cases
        self.workloads = workloads
        self.budget = 60.0 if summary.smoke else 300.0
        self.pythons = {False: sys.executable}
        # --pin: server and client on different CPUs. Left alone, the kernel sometimes runs two
        # peers that wake each other on one core, which makes throughput bimodal; not the default,
        # since a pinned peer cannot escape other load on its core.
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.cpus: tuple[int | None, int | None] = (
            (allowed[0], allowed[1]) if pin and len(allowed) > 1 else (None, None)
        )
        if self.cpus[0] is not None:
            summary.notes.append(f"server pinned to CPU {self.cpus[0]}, client to CPU {self.cpus[1]} (--pin)")

    def run(self) -> None:
        """Every selected workload, then the standalone cases."""
        s = self.summary
        if cases := {c for c in self.cases if c.startswith("mcp130")}:
            try:
                self.pythons[True] = str(_mcp130env.ensure())
            except (OSError, subprocess.SubprocessError) as exc:
                s.unavailable.update(dict.fromkeys(cases, f"could not build .bench/mcp130: {exc}"))
        for case in (*CASES, *CALL_CASES):
            if self._runnable(case):
                s.labels.setdefault(case.key, case.label)
        if "echo" in self.workloads:
            self._interleave("echo", CASES, [("", Plan("echo", self.budget, s.payloads, smoke=s.smoke))])
        if "calls" in self.workloads:
            self._interleave(
                "calls", CALL_CASES, [("", Plan("calls", self.budget, calls=30 if s.smoke else 1000))]
            )
        if "concurrency" in self.workloads:
            # 20,000 ~200 B messages in all (200 in a smoke run), at least 20 per client, at each level.
            total = 200 if s.smoke else 20_000
            plans = [
                (
                    str(n),
                    Plan(
                        "concurrency", self.budget, ["tools-call"], clients=n, per_client=max(20, total // n)
                    ),
                )
                for n in s.levels
            ]
            self._interleave("concurrency", CASES, plans)
        if "idle" in self.workloads:
            self._interleave(
                "idle", CASES, [("", Plan("idle", self.budget, ["tools-call"], clients=s.idle_clients))]
            )
        if "standalone" in self.workloads:
            for module in sorted((ROOT / "benchmarks").glob("case_*.py")):
                self._standalone(module.stem)

    def _runnable(self, case: Case) -> bool:
        key = "ours" if case.key == "ours-legacy" else case.key
        return key in self.cases and key not in self.summary.unavailable

    def _interleave(self, workload: str, cases: tuple[Case, ...], plans: list[tuple[str, Plan]]) -> None:
        runnable = [case for case in cases if self._runnable(case)]
        for repeat in range(self.summary.repeats):
            print(f"[{workload}] repeat {repeat + 1} of {self.summary.repeats}", flush=True)
            shift = repeat % max(1, len(runnable))
            for detail, plan in plans:
                for case in runnable[shift:] + runnable[:shift]:
                    self._run(
                        case,
                        f"{workload}-{case.key}{'-' + detail if detail else ''}-r{repeat + 1}",
                        detail,
                        plan,
                    )

    def _run(self, case: Case, tag: str, detail: str, plan: Plan) -> None:
        began = time.monotonic()
        python = [self.pythons[case.sdk130], "-m", f"benchmarks.{case.module}"]
        try:
            server = Peer(
                [*python, "serve", case.server], cwd=ROOT, log=LOGS / f"{tag}-server.log", cpu=self.cpus[0]
            )
            try:
                url = f"ws://127.0.0.1:{int(server.expect(READY, SERVER_START))}/mcp"
                argv = [*python, "drive", case.client, url, plan.to_json()]
                client = Peer(argv, cwd=ROOT, log=LOGS / f"{tag}-client.log", cpu=self.cpus[1])
                try:
                    self._measure(case.key, detail, plan, server, client)
                finally:
                    client.stop()
            finally:
                server.stop()
        except (PeerError, OSError, ValueError, KeyError) as exc:
            self.summary.failures.append(f"{tag}: {exc}")
            print(f"  FAILED {tag}: {exc}", file=sys.stderr, flush=True)
            return
        print(f"  {tag:<36} {time.monotonic() - began:5.1f} s", flush=True)

    def _measure(self, case: str, detail: str, plan: Plan, server: Peer, client: Peer) -> None:
        s, add = self.summary, self.summary.add
        if plan.workload == "idle":
            client.expect(WARM, plan.budget)
            before = _settled_rss(server.pid)
            client.send_line("go")
            client.expect(HOLDING, plan.budget)
            after = _settled_rss(server.pid)
            client.send_line("release")
            add(case, "idle_rss0", before / 2**20)
            add(case, "idle_rss1", after / 2**20)
            add(case, "idle_per_conn", (after - before) / plan.clients / 1024)
        with RssSampler(server.pid) as sampler:
            r = Results.from_json(client.expect(RESULT, plan.budget + SLACK))
        if plan.workload == "echo":
            for name, seconds in r.stream_seconds.items():
                add(case, f"stream:{name}", r.stream_n[name] / seconds)
                add(case, f"cpu:{name}", r.cpu_us[name])
                add(case, f"rtt50:{name}", percentile(r.rtt_us[name], 0.5))
                add(case, f"rtt99:{name}", percentile(r.rtt_us[name], 0.99))
                for metric, value in r.extra.get(name, {}).items():
                    add(case, f"{metric}:{name}", value)
        elif plan.workload == "calls":
            add(case, "calls", r.messages / r.seconds)
            add(case, "call50", percentile(r.latency_us, 0.5))
        elif plan.workload == "concurrency":
            add(case, f"conc:{detail}", r.messages / r.seconds)
            add(case, f"concp50:{detail}", percentile(r.finish_seconds, 0.5))
            add(case, f"concmax:{detail}", r.seconds)
            add(case, f"conccpu:{detail}", r.cpu_seconds / r.seconds)
            add(case, f"concrss:{detail}", sampler.peak / 2**20)
            add(case, f"connect:{detail}", r.connect_seconds)
        s.info.setdefault(f"{case}:{plan.workload}", {}).update(r.info)

    def _standalone(self, name: str) -> None:
        argv = [sys.executable, "-m", f"benchmarks.{name}", *(["--smoke"] if self.summary.smoke else [])]
        print(f"[standalone] {' '.join(argv[2:])}", flush=True)
        try:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=STANDALONE_TIMEOUT[self.summary.smoke],
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.summary.failures.append(
                f"{name}: no exit within {STANDALONE_TIMEOUT[self.summary.smoke]:.0f} s"
            )
            return
        self.summary.sections[name] = done.stdout
        if done.returncode != 0:
            tail = "\n  ".join(done.stderr.strip().splitlines()[-15:])
            self.summary.failures.append(f"{name} exited with {done.returncode}\n  {tail}")


def _settled_rss(pid: int) -> int:
    """The median of five RSS samples over a second (the last handshakes may still be settling)."""
    samples: list[int] = []
    for _ in range(5):
        time.sleep(0.2)
        samples.append(rss(pid))
    return int(statistics.median(samples))


def machine_info() -> dict[str, str]:
    """CPU, cores, memory, OS, Python, package versions, load, git revision and date."""
    import psutil

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "git": git.stdout.strip() or "?",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    return info | {name: _version(name) for name in PACKAGES}


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks``: run, print the report, write it with ``latest.json`` and the plots."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: proves every case works, measures nothing"
    )
    parser.add_argument("--out", type=Path, help="where to write latest.md and latest.json")
    parser.add_argument("--repeats", type=int, help="repeats per case (default 3; smoke 1)")
    parser.add_argument(
        "--cases", default=",".join(c.key for c in CASES), help="comma-separated (default: all)"
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default: all)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--report-only", action="store_true", help="run nothing: redo the report from latest.json"
    )
    parser.add_argument("--pin", action="store_true", help="server and client on separate CPUs")
    args = parser.parse_args(argv)
    smoke: bool = args.smoke
    out: Path = args.out or (SMOKE_OUT if smoke else RESULTS)
    cases = {name for name in str(args.cases).split(",") if name}
    workloads = {name for name in str(args.workloads).split(",") if name}
    if unknown := (cases - {c.key for c in CASES}) | (workloads - set(WORKLOADS)):
        parser.error(f"unknown case or workload: {', '.join(sorted(unknown))}")
    # Plots go to docs/img, the one copy the docs show, only from a full run into the default place.
    plots = None if args.no_plots or smoke or out.resolve() != RESULTS.resolve() else DOCS_IMG

    if args.report_only:
        summary = Summary.from_json((out / "latest.json").read_text(encoding="utf-8"))
        return report.write(summary, out, plots)
    summary = Summary(
        smoke=smoke,
        repeats=max(1, args.repeats or (1 if smoke else 3)),
        payloads=list(PAYLOADS),
        levels=[10] if smoke else [1, 10, 100, 1000],
        idle_clients=10 if smoke else 1000,
    )
    raise_fd_limit(WANTED_FDS)
    started = time.monotonic()
    summary.machine = machine_info()
    try:
        Runner(summary, cases=cases, workloads=workloads, pin=bool(args.pin)).run()
    finally:
        stop_all()
    summary.machine["duration"] = f"{time.monotonic() - started:.0f} s"
    summary.machine["load after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return report.write(summary, out, plots)
