"""Turn a `Summary` into the markdown tables and the PNG plots."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ._spec import SIZE_LABELS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .runner import Summary

OURS = "ours"

# Colours and markers per case, so every plot reads the same way.
STYLE: dict[str, tuple[str, str]] = {
    "ours": ("tab:red", "o"),
    "tws-4k": ("tab:blue", "s"),
    "tws-same": ("tab:orange", "P"),
    "tws-256k": ("tab:cyan", "D"),
    "websockets": ("tab:green", "^"),
    "mcp130": ("tab:purple", "v"),
}


def _size(size: int) -> str:
    return SIZE_LABELS.get(size, f"{size} B")


def rate(value: float | None) -> str:
    """A rate with thousands separators and three significant digits."""
    if value is None or math.isnan(value):
        return "-"
    if value >= 1000:
        digits = math.floor(math.log10(value)) - 2
        return f"{round(value, -digits):,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def micros(value: float | None) -> str:
    """A duration given in microseconds, in us below a millisecond and ms above."""
    if value is None or math.isnan(value):
        return "-"
    if value < 1000:
        return f"{value:.0f} us"
    if value < 10_000:
        return f"{value / 1000:.2f} ms"
    return f"{value / 1000:.1f} ms"


def mib(value: float | None) -> str:
    """Mebibytes."""
    return "-" if value is None else f"{value:.1f} MiB"


def ratio(ours: float | None, other: float | None) -> str:
    """ours / other, as ``1.23x``."""
    if ours is None or other is None or other == 0 or math.isnan(ours) or math.isnan(other):
        return "-"
    return f"{ours / other:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    lines.append("")
    return lines


def _cases(summary: Summary, metric_prefix: str) -> list[str]:
    return [
        case
        for case in summary.labels
        if any(metric.startswith(metric_prefix) for metric in summary.samples.get(case, {}))
    ]


def _value_and_ratio_tables(
    summary: Summary,
    *,
    title: str,
    ratio_title: str,
    columns: list[tuple[str, str]],
    cell: Callable[[str, str], str],
    prefix: str,
) -> list[str]:
    """A table of one metric per case and column, then a table of ours / each baseline."""
    cases = _cases(summary, prefix)
    if not cases:
        return []
    lines = [title, ""]
    lines += _table(
        ["case", *(label for label, _ in columns)],
        [[summary.labels[case], *(cell(case, metric) for _, metric in columns)] for case in cases],
    )
    if OURS in cases and len(cases) > 1:
        lines += [ratio_title, ""]
        lines += _table(
            ["baseline", *(label for label, _ in columns)],
            [
                [
                    summary.labels[case],
                    *(
                        ratio(summary.median(OURS, metric), summary.median(case, metric))
                        for _, metric in columns
                    ),
                ]
                for case in cases
                if case != OURS
            ],
        )
    return lines


def markdown(summary: Summary, pictures: list[Path]) -> str:
    """The results as markdown: machine, tables, ratios, notes."""
    st = summary.settings
    m = summary.machine
    repeats = f"{st.repeats} interleaved repeat{'s' if st.repeats > 1 else ''}"
    lines = [
        "### Machine and method"
        + (" (SMOKE RUN: tiny counts, figures mean nothing)" if summary.smoke else ""),
        "",
        f"- {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory', '?')}; {m.get('os', '?')}; "
        f"{m.get('python', '?')}.",
        "- Packages: "
        + ", ".join(
            f"{name} {m[name]}"
            for name in (
                "trio-mcp-ws",
                "trio",
                "trio-websocket",
                "wsproto",
                "mcp",
                "pydantic-core",
                "websockets",
            )
            if name in m
        )
        + ".",
    ]
    baseline_env = summary.info.get("mcp130:echo") or summary.info.get("mcp130:calls")
    if baseline_env:
        lines.append(
            "- mcp 1.30 environment: " + ", ".join(f"{k} {v}" for k, v in sorted(baseline_env.items())) + "."
        )
    lines += [
        f"- Medians of {repeats}; client and server in separate processes on 127.0.0.1; "
        f"run took {m.get('duration', '?')}, load average {m.get('load', '?')} before, "
        f"{m.get('load after', '?')} after; {m.get('date', '')}, git {m.get('git', '?')}.",
        "",
    ]

    size_cols = [(_size(size), f"stream:{size}") for size in st.sizes]
    lines += _value_and_ratio_tables(
        summary,
        title="#### Streaming throughput (messages/s, higher is better)",
        ratio_title="#### Streaming, ours / baseline (above 1.00x: ours is faster)",
        columns=size_cols,
        cell=lambda case, metric: rate(summary.median(case, metric)),
        prefix="stream:",
    )
    cpu_cols = [(_size(size), f"cpu:{size}") for size in st.sizes]
    lines += _value_and_ratio_tables(
        summary,
        title=(
            "#### Client CPU time per streamed message (one send and one receive; lower is better, "
            "and steadier than throughput on a busy machine)"
        ),
        ratio_title="#### Client CPU per message, ours / baseline (below 1.00x: ours is cheaper)",
        columns=cpu_cols,
        cell=lambda case, metric: micros(summary.median(case, metric)),
        prefix="cpu:",
    )
    rtt_cols = [(_size(size), f"rtt50:{size}") for size in st.sizes]
    lines += _value_and_ratio_tables(
        summary,
        title="#### Round-trip latency, p50 / p99 (lower is better)",
        ratio_title="#### Round-trip p50, ours / baseline (below 1.00x: ours is faster)",
        columns=rtt_cols,
        cell=lambda case, metric: (
            f"{micros(summary.median(case, metric))} / "
            f"{micros(summary.median(case, metric.replace('rtt50', 'rtt99')))}"
        ),
        prefix="rtt50:",
    )

    call_cases = [case for case in summary.labels if "calls" in summary.samples.get(case, {})]
    if call_cases:
        lines += [
            "#### End-to-end `call_tool` through an official server (sequential calls/s, higher is better)",
            "",
        ]
        lines += _table(
            ["case", "calls/s", "p50 latency", "protocol", "ours / case"],
            [
                [
                    summary.labels[case],
                    rate(summary.median(case, "calls")),
                    micros(summary.median(case, "call50")),
                    summary.info.get(f"{case}:calls", {}).get("protocol", "?"),
                    ratio(summary.median(OURS, "calls"), summary.median(case, "calls")),
                ]
                for case in call_cases
            ],
        )

    level_cols = [(f"{level:,} conn.", f"conc:{level}") for level in st.levels]
    lines += _value_and_ratio_tables(
        summary,
        title=(
            f"#### Concurrent connections, each streaming {_size(st.concurrency_size)} messages "
            "(total messages/s; server peak RSS)"
        ),
        ratio_title="#### Concurrent throughput, ours / baseline (above 1.00x: ours is faster)",
        columns=level_cols,
        cell=lambda case, metric: (
            f"{rate(summary.median(case, metric))}; "
            f"{mib(summary.median(case, metric.replace('conc', 'concrss')))}"
        ),
        prefix="conc:",
    )

    idle_cases = [case for case in summary.labels if "idle_per_conn" in summary.samples.get(case, {})]
    if idle_cases:
        lines += [f"#### Idle connections: server memory with {st.idle_clients:,} open, idle connections", ""]
        lines += _table(
            ["case", "server RSS before", f"with {st.idle_clients:,}", "per connection", "ours / case"],
            [
                [
                    summary.labels[case],
                    mib(summary.median(case, "idle_rss0")),
                    mib(summary.median(case, "idle_rss1")),
                    f"{summary.median(case, 'idle_per_conn') or 0:.1f} KiB",
                    ratio(summary.median(OURS, "idle_per_conn"), summary.median(case, "idle_per_conn")),
                ]
                for case in idle_cases
            ],
        )

    lines += _targets(summary)
    if summary.notes or summary.unavailable or summary.failures:
        lines += ["#### Notes", ""]
        lines += [f"- {note}" for note in summary.notes]
        lines += [f"- unavailable: {case}: {why}" for case, why in summary.unavailable.items()]
        lines += [f"- FAILED: {failure}" for failure in summary.failures]
        lines.append("")
    # docs/performance.md includes the part between the markers (its pictures live in docs/img).
    lines = ["<!-- --8<-- [start:tables] -->", "", *lines, "<!-- --8<-- [end:tables] -->", ""]
    for picture in pictures:
        lines += [f"![{picture.stem.replace('-', ' ')}]({picture.name})", ""]
    return "\n".join(lines)


# Issue 6's targets: (description, metric, baseline, bound, higher_is_better); the ratio is
# ours / baseline of the metric's medians.
TARGETS: list[tuple[str, str, str, float, bool]] = [
    ("streaming ~150 B, ours / mcp 1.30 >= 2.0x", "stream:150", "mcp130", 2.0, True),
    ("streaming ~100 KB, ours / mcp 1.30 >= 2.0x", "stream:100000", "mcp130", 2.0, True),
    ("round trip p50 ~150 B, ours / mcp 1.30 <= 0.8x", "rtt50:150", "mcp130", 0.8, False),
    (
        "streaming ~150 B, ours / raw trio-websocket with our settings >= 0.8x (<= 25% overhead)",
        "stream:150",
        "tws-same",
        0.8,
        True,
    ),
    (
        "streaming ~100 KB, ours / raw trio-websocket with our settings >= 0.8x (<= 25% overhead)",
        "stream:100000",
        "tws-same",
        0.8,
        True,
    ),
]

# Our own target for memory per idle connection (see docs/performance.md for why).
IDLE_TARGET_KIB = 48.0


def _targets(summary: Summary) -> list[str]:
    rows: list[list[str]] = []
    for text, metric, baseline, bound, higher in TARGETS:
        ours, other = summary.median(OURS, metric), summary.median(baseline, metric)
        if ours is None or other is None or other == 0:
            continue
        value = ours / other
        met = value >= bound if higher else value <= bound
        rows.append([text, f"{value:.2f}x", "yes" if met else "**no**"])
    levels = [level for level in summary.settings.levels if summary.median(OURS, f"conc:{level}") is not None]
    if levels:
        top = max(levels)
        rows.append(
            [
                f"{top:,} concurrent connections served by one process, every message echoed",
                f"{rate(summary.median(OURS, f'conc:{top}'))} messages/s",
                "yes",
            ]
        )
    idle = summary.median(OURS, "idle_per_conn")
    if idle is not None:
        rows.append(
            [
                f"server memory per idle connection <= {IDLE_TARGET_KIB:.0f} KiB",
                f"{idle:.1f} KiB",
                "yes" if idle <= IDLE_TARGET_KIB else "**no**",
            ]
        )
    if not rows:
        return []
    return ["#### Issue 6 targets, as measured in this run", "", *_table(["target", "measured", "met"], rows)]


def plots(summary: Summary, out: Path) -> list[Path]:
    """Throughput versus message size and versus connection count, one line per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    st = summary.settings

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    for case, label in summary.labels.items():
        sizes = [size for size in st.sizes if summary.median(case, f"stream:{size}") is not None]
        if not sizes:
            continue
        colour, marker = STYLE.get(case, ("black", "x"))
        mps = [summary.median(case, f"stream:{size}") or 0.0 for size in sizes]
        width = 2.5 if case == OURS else 1.5
        left.plot(sizes, mps, marker=marker, color=colour, label=label, linewidth=width)
        right.plot(
            sizes,
            [rate * size / 1e6 for rate, size in zip(mps, sizes, strict=True)],
            marker=marker,
            color=colour,
            label=label,
            linewidth=width,
        )
    for axis, ylabel in ((left, "messages/s"), (right, "MB/s")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("message size (bytes of JSON)")
        axis.set_ylabel(ylabel)
        axis.grid(visible=True, which="both", alpha=0.3)
    left.set_title("Streaming throughput vs message size")
    right.set_title("Streaming bandwidth vs message size")
    _legend_below(fig, left)
    written.append(_save(fig, out / "bench-throughput-vs-size.png"))
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    for case, label in summary.labels.items():
        levels = [level for level in st.levels if summary.median(case, f"conc:{level}") is not None]
        if not levels:
            continue
        colour, marker = STYLE.get(case, ("black", "x"))
        width = 2.5 if case == OURS else 1.5
        left.plot(
            levels,
            [summary.median(case, f"conc:{level}") or 0.0 for level in levels],
            marker=marker,
            color=colour,
            label=label,
            linewidth=width,
        )
        right.plot(
            levels,
            [summary.median(case, f"concrss:{level}") or 0.0 for level in levels],
            marker=marker,
            color=colour,
            label=label,
            linewidth=width,
        )
    left.set_title(f"Total throughput vs connections ({_size(st.concurrency_size)})")
    left.set_ylabel("messages/s, all connections")
    right.set_title("Server peak RSS vs connections")
    right.set_ylabel("MiB")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("concurrent connections")
        axis.grid(visible=True, which="both", alpha=0.3)
    left.set_yscale("log")
    right.set_ylim(bottom=0)
    _legend_below(fig, left)
    written.append(_save(fig, out / "bench-throughput-vs-connections.png"))
    plt.close(fig)
    return written


def _legend_below(fig: Figure, axis: Axes) -> None:
    """One legend for both panels, under them, where it cannot hide a line."""
    handles, labels = axis.get_legend_handles_labels()
    # matplotlib types legend's **kwargs loosely; the call itself is plain.
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)  # pyright: ignore[reportUnknownMemberType]
    fig.tight_layout(rect=(0, 0.1, 1, 1))


def _save(fig: object, path: Path) -> Path:
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    # matplotlib types savefig's **kwargs loosely; the call itself is plain.
    fig.savefig(path, dpi=110)  # pyright: ignore[reportUnknownMemberType]
    return path
