"""A pytest plugin for ``nox -s fuzz``: count the Hypothesis examples run and the failures found.

Loaded with ``-p tests.fuzz_report``. At the end of the session it prints one line per
Hypothesis test and the totals, ending with a line like::

    fuzz: 412345 examples run in 31 Hypothesis tests, 0 failures

How it counts: Hypothesis reports the statistics of every run of its engine (one per
``@given`` test, per parametrized case, per stateful machine) to a callback held in
``hypothesis.statistics.collector``; its pytest plugin sets that callback to fill in
``--hypothesis-show-statistics``. This plugin wraps each test call inside Hypothesis's own
wrapper and chains a callback that tallies the test cases of every phase before passing the
statistics on. An example "run" is a test case that reached the test body (Hypothesis's
``valid`` and ``interesting`` statuses); inputs rejected while drawing (``invalid``,
``overrun``) are counted apart. Failures are the distinct failures Hypothesis reports, and
the failing test items, whose falsifying examples are repeated at the end so that they can
be saved as regression tests (see ``docs/fuzzing.md``).

Hypothesis documents the statistics format as unstable; if it changes, the counts read as
zero and the report says so instead of failing the session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import statistics

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from _pytest.terminal import TerminalReporter

# Typed as holding None only (its default); it holds a statistics callback while a test runs.
collector: Any = statistics.collector

RAN = ("valid", "interesting")
REJECTED = ("invalid", "overrun")


@dataclass
class TestTally:
    """What the Hypothesis runs inside one test item did."""

    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter[str])
    distinct_failures: int = 0
    stopped_because: str = ""


@dataclass
class FuzzReport:
    """The session's tally, and the hooks that fill it in and print it."""

    tests: dict[str, TestTally] = field(default_factory=dict[str, TestTally])
    failed: dict[str, str] = field(default_factory=dict[str, str])
    unreadable_statistics: bool = False

    @pytest.hookimpl(wrapper=True, trylast=True)  # innermost: inside Hypothesis's own wrapper
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        outer: Callable[[Any], None] | None = collector.value

        def note(statistics: Any) -> None:
            self.record(item.nodeid, statistics)
            if outer is not None:
                outer(statistics)

        with collector.with_value(note):
            return (yield)

    def record(self, nodeid: str, statistics: Any) -> None:
        tally = self.tests.setdefault(nodeid, TestTally())
        tally.runs += 1
        try:
            for key, phase in statistics.items():
                if key.endswith("-phase"):
                    tally.statuses.update(case["status"] for case in phase["test-cases"])
                    tally.distinct_failures = max(tally.distinct_failures, phase.get("distinct-failures", 0))
            tally.stopped_because = str(statistics.get("stopped-because", ""))
        except (AttributeError, KeyError, TypeError):
            self.unreadable_statistics = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.failed:
            self.failed[report.nodeid] = falsifying_example(report.longreprtext)

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "fuzz report")
        for nodeid, tally in sorted(self.tests.items()):
            ran = sum(tally.statuses[status] for status in RAN)
            rejected = sum(tally.statuses[status] for status in REJECTED)
            write(
                f"{nodeid}: {ran} examples ({rejected} rejected while drawing), "
                f"{tally.distinct_failures} failures; stopped because {tally.stopped_because or '?'}"
            )
        for nodeid, example in self.failed.items():
            write(f"FAILED {nodeid}; save its shrunk example as a regression test:")
            for line in example.splitlines():
                write(f"    {line}")
        if self.unreadable_statistics:
            write("fuzz: Hypothesis's statistics format changed; the counts below are incomplete")
        total = Counter[str]()
        for tally in self.tests.values():
            total.update(tally.statuses)
        failures = sum(tally.distinct_failures for tally in self.tests.values())
        write(
            f"fuzz: {sum(total[status] for status in RAN)} examples run in {len(self.tests)} Hypothesis "
            f"tests, {max(failures, len(self.failed))} failures"
        )


def falsifying_example(text: str) -> str:
    """The "Falsifying example" and reproduction lines of a Hypothesis failure report."""
    keep: list[str] = []
    copying = False
    for line in text.splitlines():
        stripped = line.removeprefix("E").strip()
        if stripped.startswith(("Falsifying example", "Falsifying explicit example", "Failing test case")):
            copying = True
        if copying:
            if not stripped:
                copying = False
                continue
            keep.append(stripped)
        elif "@reproduce_failure" in stripped:
            keep.append(stripped)
    return "\n".join(keep) or "(no falsifying example in the report: see the failure above)"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FuzzReport(), "fuzz-report")
