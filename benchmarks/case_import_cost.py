"""What trio-mcp-ws costs a process that merely imports things: our Hypothesis plugin above all.

``python -m benchmarks.case_import_cost [--smoke]`` prints a markdown section (a heading and
a table) and exits 0. Each figure is the median CPU time (user + system, `time.process_time`
in the child) of one step in a fresh interpreter of this environment, over `FULL_REPEATS`
runs (`SMOKE_REPEATS` with ``--smoke``); the children run one after another, rotating the
order each repeat so that drifts of the machine spread over every row.

The plugin is measured as issue 15 asks: our hook alone, after every other installed
Hypothesis plugin has loaded (trio registers one that costs far more than ours, and is not
ours to remove). Hypothesis runs the plugins itself at the end of ``import hypothesis``;
here the child imports it with ``HYPOTHESIS_NO_PLUGINS=1``, then loads and calls the entry
points as Hypothesis would, timing ours apart. Target: at most `TARGET_HOOK` seconds.

Our hook defers the registration until `mcp_types` is imported, and the strategies
themselves until ``st.from_type`` first resolves a message class: the table shows those two
deferred costs too, so that nothing is hidden by being moved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Final

FULL_REPEATS: Final = 15
SMOKE_REPEATS: Final = 3
# Seconds of CPU our Hypothesis hook may add to `import hypothesis` (issue 15, item 2).
TARGET_HOOK: Final = 0.030
# Seconds one child may take before the benchmark gives up on it (a cold import of the SDK
# takes about 1 s on a quiet machine; a loaded CI machine is several times slower).
CHILD_TIMEOUT: Final = 120.0

# Run in the child after `import hypothesis` with HYPOTHESIS_NO_PLUGINS=1: load the entry
# points as `hypothesis.entry_points.run` does, the others first, ours last (if OURS) and
# timed apart, into OTHERS_SECONDS and OURS_SECONDS.
_LOAD_PLUGINS: Final = """
import importlib.metadata, time
_entries = list(importlib.metadata.entry_points(group="hypothesis"))
_mine = [e for e in _entries if e.dist is not None and e.dist.name.replace("_", "-") == "trio-mcp-ws"]
OTHERS_SECONDS = OURS_SECONDS = 0.0
for _entry in [e for e in _entries if e not in _mine] + (_mine if OURS else []):
    _start = time.process_time()
    _hook = _entry.load()
    if callable(_hook):
        _hook()
    if _entry in _mine:
        OURS_SECONDS += time.process_time() - _start
    else:
        OTHERS_SECONDS += time.process_time() - _start
"""


def _with_plugins(*, ours: bool) -> str:
    """Child code: a bare ``import hypothesis``, then its plugins, ours included or not."""
    return f"import hypothesis\nOURS = {ours}\n{_LOAD_PLUGINS}"


@dataclass(frozen=True)
class Step:
    """One measured step: code run before the clock starts, then the timed code."""

    key: str
    label: str
    timed: str
    setup: str = ""
    no_plugins: bool = False

    def script(self) -> str:
        """The child's program: prints the CPU seconds of ``timed`` as JSON."""
        return (
            "import json, time\n"
            f"{self.setup}\n"
            "_start = time.process_time()\n"
            f"{self.timed}\n"
            "print(json.dumps({'seconds': time.process_time() - _start}))\n"
        )


STEPS: Final = (
    Step(
        "bare", "`import hypothesis`, no plugins (`HYPOTHESIS_NO_PLUGINS=1`)", "import hypothesis", "", True
    ),
    Step("all", "`import hypothesis`, every installed plugin", "import hypothesis"),
    Step(
        "mcp_types_ours",
        "`import mcp_types` after Hypothesis and every plugin (our finder registers)",
        "import mcp_types",
        _with_plugins(ours=True),
        True,
    ),
    Step(
        "mcp_types_others",
        "`import mcp_types` after Hypothesis and the other plugins only",
        "import mcp_types",
        _with_plugins(ours=False),
        True,
    ),
    Step(
        "from_type",
        "first `st.from_type(JSONRPCRequest)` draw (imports our strategies)",
        "st.from_type(t.JSONRPCRequest).example()",
        "import warnings, hypothesis, mcp_types as t\n"
        "from hypothesis import errors, strategies as st\n"
        "warnings.simplefilter('ignore', errors.NonInteractiveExampleWarning)",
    ),
    Step("mcp_types", "`import mcp_types`", "import mcp_types"),
    Step("trio_mcp_ws", "`import trio_mcp_ws`", "import trio_mcp_ws"),
)

# The plugins themselves, ours timed apart, in a child of their own.
_PLUGINS_SCRIPT: Final = (
    _with_plugins(ours=True)
    + "import json\n"
    + "print(json.dumps({'others': OTHERS_SECONDS, 'ours': OURS_SECONDS, 'found': bool(_mine)}))\n"
)


@dataclass
class Samples:
    """CPU seconds per row, filled in repeat by repeat."""

    rows: dict[str, list[float]] = field(default_factory=dict[str, list[float]])
    hook_found: bool = True

    def add(self, key: str, seconds: float) -> None:
        self.rows.setdefault(key, []).append(seconds)

    def median_ms(self, key: str) -> float:
        return statistics.median(self.rows[key]) * 1000


def _child(script: str, *, no_plugins: bool) -> dict[str, float]:
    env = {key: value for key, value in os.environ.items() if key != "HYPOTHESIS_NO_PLUGINS"}
    if no_plugins:
        env["HYPOTHESIS_NO_PLUGINS"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=CHILD_TIMEOUT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child failed ({result.returncode}):\n{result.stderr}")
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def measure(repeats: int) -> Samples:
    """Run every step ``repeats`` times, in an order rotated by one each repeat."""
    samples = Samples()
    jobs: list[Step | None] = [*STEPS, None]  # None: the plugins, ours timed apart
    for repeat in range(repeats):
        shift = repeat % len(jobs)
        for job in jobs[shift:] + jobs[:shift]:
            if job is None:
                plugins = _child(_PLUGINS_SCRIPT, no_plugins=True)
                samples.add("others", plugins["others"])
                samples.add("ours", plugins["ours"])
                samples.hook_found = samples.hook_found and bool(plugins["found"])
            else:
                samples.add(job.key, _child(job.script(), no_plugins=job.no_plugins)["seconds"])
    return samples


def render(samples: Samples, repeats: int) -> str:
    """The markdown section: a heading, a sentence, and the table."""
    ours = samples.median_ms("ours")
    verdict = "on target" if samples.hook_found and ours <= TARGET_HOOK * 1000 else "OVER TARGET"
    if not samples.hook_found:
        verdict = "NOT FOUND: is trio-mcp-ws installed?"
    lines = [
        "## Import cost (CPU, fresh interpreters)",
        "",
        f"Median CPU time of each step over {repeats} fresh interpreters. Our Hypothesis hook, "
        f"timed alone after the other installed plugins: **{ours:.1f} ms** "
        f"(target <= {TARGET_HOOK * 1000:.0f} ms: {verdict}).",
        "",
        "| step | median CPU ms | min | max |",
        "|---|---:|---:|---:|",
    ]
    labels = {step.key: step.label for step in STEPS}
    labels["others"] = "the other installed Hypothesis plugins (trio's), after a bare `import hypothesis`"
    labels["ours"] = "**our hook alone**, after them"
    order = ["bare", "others", "ours", "all", "mcp_types_ours", "mcp_types_others", "from_type"]
    order += ["mcp_types", "trio_mcp_ws"]
    for key in order:
        values = samples.rows[key]
        lines.append(
            f"| {labels[key]} | {samples.median_ms(key):.1f} | {min(values) * 1000:.1f} "
            f"| {max(values) * 1000:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_import_cost")
    parser.add_argument(
        "--smoke", action="store_true", help=f"{SMOKE_REPEATS} repeats instead of {FULL_REPEATS}"
    )
    args = parser.parse_args(argv)
    repeats = SMOKE_REPEATS if args.smoke else FULL_REPEATS
    print(render(measure(repeats), repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
