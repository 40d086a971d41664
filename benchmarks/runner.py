"""The orchestrator: runs every case, interleaved, in separate processes, and reports medians.

For each repeat, the cases of a workload run one after another in an order rotated by one
each repeat, so slow drifts of the machine (other load, thermal state) spread over all
cases instead of favouring whichever ran first. Each run starts a fresh server process and
a fresh client process on 127.0.0.1 (free ports chosen by the servers), and stops both by
pid when it ends, even on error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from . import _mcp130env
from ._process import Peer, PeerError, RssSampler, cpus, rss, stop_all
from ._spec import (
    HOLDING,
    READY,
    RESULT,
    SIZES,
    WARM,
    CallsPlan,
    ConcurrencyPlan,
    EchoPlan,
    IdlePlan,
    Plan,
    Results,
    percentile,
)

ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUT: Final = ROOT / "benchmarks" / "results"
SMOKE_OUT: Final = ROOT / ".bench" / "smoke"
DOCS_IMG: Final = ROOT / "docs" / "img"
LOGS: Final = ROOT / ".bench" / "logs"

# Seconds a server may take to print READY (the SDK 1.30 stack imports a lot).
SERVER_START_TIMEOUT: Final = 60.0
# Seconds the orchestrator waits beyond a driver's own budget before giving up on it.
DRIVER_SLACK: Final = 30.0
# Seconds to let a server settle before reading its memory.
RSS_SETTLE: Final = 0.5
# File descriptors needed: 1,000 client sockets, 1,000 server sockets, and slack.
WANTED_FDS: Final = 8192


@dataclass(frozen=True)
class Case:
    """A transport under test: its server and client commands, in one peer module."""

    key: str
    label: str
    module: str
    server: tuple[str, ...]
    client: tuple[str, ...]
    sdk130: bool = False


OURS: Final = "ours"


def _our_tws_settings() -> tuple[str, ...]:
    """The trio-websocket settings our transport uses, for the like-for-like raw baseline."""
    import importlib

    # Private constants: read with fallbacks, so a rename in the core cannot break the harness.
    _tws = importlib.import_module("trio_mcp_ws._tws")
    buffer: int = getattr(_tws, "RECEIVE_BUFFER_SIZE", 64 * 1024)
    queue: int = getattr(_tws, "MESSAGE_QUEUE_SIZE", 4)
    return ("--buffer", str(buffer), "--queue", str(queue))


_OUR_TWS_SETTINGS: Final = _our_tws_settings()
ECHO_CASES: Final = (
    Case(OURS, "trio-mcp-ws (ours)", "benchmarks.stack_ours", ("serve", "echo"), ("drive", "ours")),
    Case(
        "tws-4k",
        "raw trio-websocket, 4 KiB buffer",
        "benchmarks.stack_tws",
        ("serve", "echo", "--buffer", "4096"),
        ("drive", "tws", "--buffer", "4096"),
    ),
    Case(
        "tws-same",
        "raw trio-websocket, our settings",
        "benchmarks.stack_tws",
        ("serve", "echo", *_OUR_TWS_SETTINGS),
        ("drive", "tws", *_OUR_TWS_SETTINGS),
    ),
    Case(
        "tws-256k",
        "raw trio-websocket, 256 KiB buffer",
        "benchmarks.stack_tws",
        ("serve", "echo", "--buffer", "262144"),
        ("drive", "tws", "--buffer", "262144"),
    ),
    Case(
        "websockets",
        "raw websockets (asyncio)",
        "benchmarks.stack_websockets",
        ("serve", "echo"),
        ("drive", "websockets"),
    ),
    Case(
        "mcp130",
        "mcp 1.30 SDK transport",
        "benchmarks.stack_mcp130",
        ("serve", "echo"),
        ("drive", "mcp130"),
        sdk130=True,
    ),
)
OURS_LEGACY: Final = Case(
    "ours-legacy",
    "trio-mcp-ws (ours), handshake era",
    "benchmarks.stack_ours",
    ("serve", "mcp"),
    ("drive", "ours-legacy"),
)
CALL_CASES: Final = (
    Case(OURS, "trio-mcp-ws (ours)", "benchmarks.stack_ours", ("serve", "mcp"), ("drive", "ours")),
    OURS_LEGACY,
    Case(
        "mcp130",
        "mcp 1.30 SDK transport",
        "benchmarks.stack_mcp130",
        ("serve", "mcp"),
        ("drive", "mcp130"),
        True,
    ),
)
WORKLOADS: Final = ("echo", "calls", "concurrency", "idle")
# Whose versions the results record.
PACKAGES: Final = (
    "trio-mcp-ws",
    "trio",
    "trio-websocket",
    "wsproto",
    "mcp",
    "pydantic-core",
    "websockets",
    "anyio",
)


@dataclass
class Settings:
    """How much of everything to run."""

    sizes: list[int]
    stream_n: dict[int, int]
    rtt_n: dict[int, int]
    warmup: int
    calls: int
    call_warmup: int
    levels: list[int]
    concurrency_messages: int
    concurrency_size: int
    idle_clients: int
    repeats: int
    budget: float

    @classmethod
    def full(cls) -> Settings:
        """The real run: ~10-15 minutes on two cores."""
        return cls(
            sizes=list(SIZES),
            stream_n={150: 20_000, 10_000: 5_000, 100_000: 1_000, 1_000_000: 100},
            rtt_n={150: 2_000, 10_000: 1_000, 100_000: 300, 1_000_000: 50},
            warmup=500,
            calls=1_000,
            call_warmup=50,
            levels=[1, 10, 100, 1000],
            concurrency_messages=20_000,
            concurrency_size=150,
            idle_clients=1_000,
            repeats=3,
            budget=300.0,
        )

    @classmethod
    def smoke(cls) -> Settings:
        """A few seconds per case: proves the harness works, measures nothing."""
        return cls(
            sizes=[150, 10_000],
            stream_n={150: 300, 10_000: 100},
            rtt_n={150: 50, 10_000: 20},
            warmup=20,
            calls=30,
            call_warmup=5,
            levels=[1, 10],
            concurrency_messages=200,
            concurrency_size=150,
            idle_clients=20,
            repeats=1,
            budget=60.0,
        )

    def per_client(self, clients: int) -> int:
        """Messages each client streams at a concurrency level (at least 20)."""
        return max(20, self.concurrency_messages // clients)


@dataclass
class Summary:
    """Everything measured, per case and metric, one value per repeat."""

    settings: Settings
    machine: dict[str, str] = field(default_factory=dict[str, str])
    labels: dict[str, str] = field(default_factory=dict[str, str])
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict[str, dict[str, list[float]]])
    unavailable: dict[str, str] = field(default_factory=dict[str, str])
    failures: list[str] = field(default_factory=list[str])
    notes: list[str] = field(default_factory=list[str])
    info: dict[str, dict[str, str]] = field(default_factory=dict[str, dict[str, str]])
    smoke: bool = False

    def add(self, case: str, metric: str, value: float) -> None:
        """Record one repeat's value."""
        self.samples.setdefault(case, {}).setdefault(metric, []).append(value)

    def median(self, case: str, metric: str) -> float | None:
        """The median over repeats, or None if never measured."""
        values = self.samples.get(case, {}).get(metric)
        return statistics.median(values) if values else None

    @classmethod
    def from_json(cls, text: str) -> Summary:
        """Read back what `to_json` wrote (for ``--report-only``)."""
        raw: dict[str, Any] = json.loads(text)
        st: dict[str, Any] = raw["settings"]
        settings = Settings(
            sizes=[int(x) for x in st["sizes"]],
            stream_n={int(k): int(v) for k, v in st["stream_n"].items()},
            rtt_n={int(k): int(v) for k, v in st["rtt_n"].items()},
            warmup=int(st["warmup"]),
            calls=int(st["calls"]),
            call_warmup=int(st["call_warmup"]),
            levels=[int(x) for x in st["levels"]],
            concurrency_messages=int(st["concurrency_messages"]),
            concurrency_size=int(st["concurrency_size"]),
            idle_clients=int(st["idle_clients"]),
            repeats=int(st["repeats"]),
            budget=float(st["budget"]),
        )
        # Cases in the order the tables use, whatever order the file has them in.
        order = [OURS, OURS_LEGACY.key] + [case.key for case in ECHO_CASES if case.key != OURS]
        labels: dict[str, str] = raw["labels"]
        ranked = sorted(labels, key=lambda key: order.index(key) if key in order else len(order))
        return cls(
            settings,
            machine=raw["machine"],
            labels={key: labels[key] for key in ranked},
            samples=raw["samples"],
            unavailable=raw["unavailable"],
            failures=raw["failures"],
            notes=raw["notes"],
            info=raw["info"],
            smoke=raw["smoke"],
        )

    def to_json(self) -> str:
        """Everything, for ``latest.json``."""
        medians = {
            case: {metric: statistics.median(values) for metric, values in metrics.items()}
            for case, metrics in self.samples.items()
        }
        return json.dumps({**asdict(self), "medians": medians}, indent=1)


class Runner:
    """Runs the cases and fills a `Summary`."""

    def __init__(
        self, settings: Settings, *, cases: set[str], workloads: set[str], smoke: bool, pin: bool
    ) -> None:
        self.settings = settings
        self.summary = Summary(settings, smoke=smoke)
        self.cases = cases
        self.workloads = workloads
        self.pythons: dict[bool, str] = {False: sys.executable}
        # With --pin, server and client on different CPUs: left to itself, the kernel sometimes
        # runs two processes that wake each other on one core, which makes throughput bimodal.
        # Not the default: a pinned process cannot escape other load on its core, and stacks
        # that hand work to threads (FastMCP's sync tools, our large-frame decode) then pay
        # for every hand-off with a context switch on the same core.
        available = cpus()
        self.server_cpu: int | None = None
        self.client_cpu: int | None = None
        if pin and len(available) > 1:
            self.server_cpu, self.client_cpu = available[0], available[1]
            self.summary.notes.append(
                f"server pinned to CPU {self.server_cpu}, client to CPU {self.client_cpu} (--pin)"
            )

    # -- availability ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Find out which cases can run; build the mcp 1.30 environment if needed."""
        import trio_mcp_ws

        for name in ("serve", "serve_mcp"):
            if not hasattr(trio_mcp_ws, name):  # only while the server is being written
                self.summary.unavailable[OURS] = f"trio_mcp_ws.{name} does not exist yet"
        if "mcp130" in self.cases:
            try:
                self.pythons[True] = str(_mcp130env.ensure())
            except (OSError, subprocess.SubprocessError) as exc:
                self.summary.unavailable["mcp130"] = f"could not build .bench/mcp130: {exc}"
        for case in ECHO_CASES:
            if case.key in self.cases:
                self.summary.labels[case.key] = case.label
                if case.key == OURS:
                    self.summary.labels[OURS_LEGACY.key] = OURS_LEGACY.label

    def _available(self, case: Case, workload: str) -> bool:
        if case is OURS_LEGACY:
            case = CALL_CASES[0]
        if case.key not in self.cases or case.key in self.summary.unavailable:
            return False
        return f"{case.key}:{workload}" not in self.summary.unavailable

    # -- one run --------------------------------------------------------------------------

    def _start_server(self, case: Case, tag: str) -> tuple[Peer, str]:
        server = Peer(
            [self.pythons[case.sdk130], "-m", case.module, *case.server],
            cwd=ROOT,
            log=LOGS / f"{tag}-server.log",
            cpu=self.server_cpu,
        )
        try:
            port = int(server.expect(READY, SERVER_START_TIMEOUT))
        except BaseException:
            server.stop()
            raise
        return server, f"ws://127.0.0.1:{port}/mcp"

    def _start_client(self, case: Case, tag: str, url: str, plan: Plan) -> Peer:
        return Peer(
            [
                self.pythons[case.sdk130],
                "-m",
                case.module,
                *case.client,
                "--url",
                url,
                "--plan",
                plan.to_json(),
            ],
            cwd=ROOT,
            log=LOGS / f"{tag}-client.log",
            cpu=self.client_cpu,
        )

    def _finish(self, client: Peer, plan: Plan) -> Results:
        results = Results.from_json(client.expect(RESULT, plan.budget + DRIVER_SLACK))
        client.wait(DRIVER_SLACK)
        return results

    def _run(self, case: Case, workload: str, repeat: int, detail: str, plan: Plan) -> None:
        tag = f"{workload}-{case.key}{'-' + detail if detail else ''}-r{repeat + 1}"
        began = time.monotonic()
        try:
            server, url = self._start_server(case, tag)
            try:
                client = self._start_client(case, tag, url, plan)
                try:
                    self._measure(case, workload, detail=detail, plan=plan, server=server, client=client)
                finally:
                    client.stop()
            finally:
                server.stop()
        except (PeerError, OSError, ValueError, KeyError) as exc:
            message = f"{workload} {case.key} {detail} repeat {repeat + 1}: {exc}"
            self.summary.failures.append(message)
            print(f"  FAILED {message}", file=sys.stderr, flush=True)
            return
        print(f"  {tag:<32} repeat {repeat + 1}: {time.monotonic() - began:5.1f} s", flush=True)

    def _measure(
        self, case: Case, workload: str, *, detail: str, plan: Plan, server: Peer, client: Peer
    ) -> None:
        s = self.summary
        if workload == "echo":
            results = self._finish(client, plan)
            for size, seconds in results.stream_seconds.items():
                s.add(case.key, f"stream:{size}", results.stream_n[size] / seconds)
                s.add(case.key, f"cpu:{size}", results.stream_cpu_us[size])
            for size, samples in results.rtt_us.items():
                s.add(case.key, f"rtt50:{size}", percentile(samples, 0.5))
                s.add(case.key, f"rtt99:{size}", percentile(samples, 0.99))
        elif workload == "calls":
            results = self._finish(client, plan)
            assert results.calls is not None
            assert results.calls_seconds is not None
            s.add(case.key, "calls", results.calls / results.calls_seconds)
            s.add(case.key, "call50", percentile(results.call_latency_us, 0.5))
        elif workload == "concurrency":
            with RssSampler(server.pid) as sampler:
                results = self._finish(client, plan)
            assert results.messages is not None
            assert results.concurrency_seconds is not None
            s.add(case.key, f"conc:{detail}", results.messages / results.concurrency_seconds)
            s.add(case.key, f"concrss:{detail}", sampler.peak / 2**20)
            s.add(case.key, f"connect:{detail}", results.connect_seconds or 0.0)
        else:
            assert plan.idle is not None
            client.expect(WARM, plan.budget)
            before = _settled_rss(server.pid)
            client.send_line("go")
            client.expect(HOLDING, plan.budget)
            after = _settled_rss(server.pid)
            client.send_line("release")
            results = self._finish(client, plan)
            s.add(case.key, "idle_rss0", before / 2**20)
            s.add(case.key, "idle_rss1", after / 2**20)
            s.add(case.key, "idle_per_conn", (after - before) / plan.idle.clients / 1024)
        s.info.setdefault(f"{case.key}:{workload}", {}).update(results.info)

    # -- the whole run --------------------------------------------------------------------

    def run(self) -> Summary:
        """Every selected workload, every available case, ``repeats`` times, interleaved."""
        st = self.settings
        if "echo" in self.workloads:
            plan = Plan(
                budget=st.budget,
                echo=EchoPlan(sizes=st.sizes, stream_n=st.stream_n, rtt_n=st.rtt_n, warmup=st.warmup),
            )
            self._interleave("echo", ECHO_CASES, [("", plan)])
        if "calls" in self.workloads:
            plan = Plan(budget=st.budget, calls=CallsPlan(count=st.calls, warmup=st.call_warmup))
            self._interleave("calls", CALL_CASES, [("", plan)])
        if "concurrency" in self.workloads:
            plans = [
                (
                    str(level),
                    Plan(
                        budget=st.budget,
                        concurrency=ConcurrencyPlan(
                            clients=level, per_client=st.per_client(level), size=st.concurrency_size
                        ),
                    ),
                )
                for level in st.levels
            ]
            self._interleave("concurrency", ECHO_CASES, plans)
        if "idle" in self.workloads:
            plan = Plan(budget=st.budget, idle=IdlePlan(clients=st.idle_clients))
            self._interleave("idle", ECHO_CASES, [("", plan)])
        return self.summary

    def _interleave(self, workload: str, cases: tuple[Case, ...], plans: list[tuple[str, Plan]]) -> None:
        runnable = [case for case in cases if self._available(case, workload)]
        if not runnable:
            return
        for repeat in range(self.settings.repeats):
            print(f"[{workload}] repeat {repeat + 1} of {self.settings.repeats}", flush=True)
            shift = repeat % len(runnable)
            order = runnable[shift:] + runnable[:shift]
            for detail, plan in plans:
                for case in order:
                    self._run(case, workload, repeat, detail, plan)


def _settled_rss(pid: int) -> int:
    """The process's RSS after a short pause (its last handshakes may still be in flight)."""
    time.sleep(RSS_SETTLE)
    samples = [rss(pid)]
    for _ in range(4):
        time.sleep(0.1)
        samples.append(rss(pid))
    return int(statistics.median(samples))


def raise_fd_limit(wanted: int = WANTED_FDS) -> None:
    """Raise this process's (and so its children's) open-file limit toward ``wanted``."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def machine_info() -> dict[str, str]:
    """CPU, cores, memory, OS, Python and package versions, load, git revision, date."""
    import psutil

    info: dict[str, str] = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    info.update({name: _version(name) for name in PACKAGES})
    if hasattr(os, "getloadavg"):
        info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        info["git"] = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks``: run, print the markdown table, write results and plots."""

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="a few seconds per case, to prove the harness works"
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write latest.md/.json and the plots")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (default 3; smoke 1)")
    parser.add_argument(
        "--cases",
        default=",".join(case.key for case in ECHO_CASES),
        help="comma-separated cases (default: all)",
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated workloads (default: all)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite latest.md and the plots from the latest.json in --out",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin server and client to separate CPUs (steadier A/B runs; distorts threaded stacks)",
    )
    args = parser.parse_args(argv)
    smoke: bool = args.smoke
    settings = Settings.smoke() if smoke else Settings.full()
    if args.repeats is not None:
        settings.repeats = max(1, int(args.repeats))
    out: Path = args.out or (SMOKE_OUT if smoke else DEFAULT_OUT)
    cases = {name.strip() for name in str(args.cases).split(",") if name.strip()}
    workloads = {name.strip() for name in str(args.workloads).split(",") if name.strip()}
    unknown = (cases - {case.key for case in ECHO_CASES}) | (workloads - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown case or workload: {', '.join(sorted(unknown))}")

    if args.report_only:
        summary = Summary.from_json((out / "latest.json").read_text(encoding="utf-8"))
        return _write(summary, out, plots=not (args.no_plots or summary.smoke))

    raise_fd_limit()
    started = time.monotonic()
    runner = Runner(settings, cases=cases, workloads=workloads, smoke=smoke, pin=bool(args.pin))
    try:
        runner.summary.machine = machine_info()
        runner.prepare()
        summary = runner.run()
    finally:
        stop_all()
    summary.machine["duration"] = f"{time.monotonic() - started:.0f} s"
    if hasattr(os, "getloadavg"):
        summary.machine["load after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    return _write(summary, out, plots=not (args.no_plots or smoke))


def _write(summary: Summary, out: Path, *, plots: bool) -> int:
    """Print the tables; write latest.md, latest.json and the plots (copied to docs/img)."""
    from . import report

    out.mkdir(parents=True, exist_ok=True)
    pictures = report.plots(summary, out) if plots else []
    table = report.markdown(summary, pictures)
    (out / "latest.md").write_text(table, encoding="utf-8")
    (out / "latest.json").write_text(summary.to_json() + "\n", encoding="utf-8")
    if out.resolve() == DEFAULT_OUT.resolve() and pictures:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for picture in pictures:
            shutil.copyfile(picture, DOCS_IMG / picture.name)
    print()
    print(table)
    print(f"wrote {out / 'latest.md'} in {summary.machine['duration']}", flush=True)
    return 1 if summary.failures else 0
