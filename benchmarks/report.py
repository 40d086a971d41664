"""Turn a `Summary` into the markdown report and the two PNG plots."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from ._markdown import table
from ._spec import PAYLOADS, REALISTIC, payload
from ._summary import PACKAGES

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ._summary import Summary

OURS = "ours"
# One colour per case, so every plot reads the same way.
COLOURS = {"ours": "red", "tws": "orange", "websockets": "green", "mcp130": "purple", "mcp130-plain": "pink"}
Target: TypeAlias = tuple[str, str, str | None, str, float, bool]


def _target(
    what: str, metric: str, baseline: str | None, bound: float, *, lower: bool = False, of: str = ""
) -> Target:
    """Ours ``metric`` over ``baseline``'s ``of`` (default: the same metric; None: an absolute bound)."""
    return (what, metric, baseline, of or metric, bound, not lower)


SDK_PLAIN = "mcp 1.30, compression off"
# Issue 16's targets, each a ratio of medians of this run.
TARGETS: list[Target] = [
    _target("tools/call streaming >= 2.5x mcp 1.30", "stream:tools-call", "mcp130", 2.5),
    _target("tools/call round trip p50 <= 0.7x mcp 1.30", "rtt50:tools-call", "mcp130", 0.7, lower=True),
    _target("tools/call streaming >= 1.2x raw trio-websocket", "stream:tools-call", "tws", 1.2),
    *(
        _target(f"{PAYLOADS[p]} streaming >= 2x mcp 1.30", f"stream:{p}", "mcp130", 2.0)
        for p in REALISTIC[1:]
    ),
    *(
        _target(f"{PAYLOADS[p]} streaming >= 2x {SDK_PLAIN}", f"stream:{p}", "mcp130-plain", 2.0)
        for p in REALISTIC[1:]
    ),
    *(
        _target(f"{PAYLOADS[p]} streaming >= 0.8x raw trio-websocket", f"stream:{p}", "tws", 0.8)
        for p in ("text", "image")
    ),
    _target(
        "tools/list client CPU <= 1.25x our decode + encode",
        "cpu:tools-list",
        OURS,
        1.25,
        lower=True,
        of="codec:tools-list",
    ),
    _target("client CPU per tools/call message <= 50 us", "cpu:tools-call", None, 50.0, lower=True),
    _target("call_tool rate >= 2.5x mcp 1.30", "calls", "mcp130", 2.5),
    _target("server memory per idle connection <= 32 KiB", "idle_per_conn", None, 32.0, lower=True),
    _target("moonshot: tools/call streaming >= 0.5x raw websockets", "stream:tools-call", "websockets", 0.5),
]


def rate(value: float | None) -> str:
    """A rate with thousands separators and three significant digits."""
    if value is None or math.isnan(value):
        return "-"
    if value < 100:
        return f"{value:.1f}"
    return f"{round(value, 2 - math.floor(math.log10(value))):,.0f}"


def micros(value: float | None) -> str:
    """Microseconds, shown in us below a millisecond and in ms above."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.0f} us" if value < 1000 else f"{value / 1000:.{2 if value < 10_000 else 1}f} ms"


def ratio(ours: float | None, other: float | None) -> str:
    """``ours / other`` as ``1.23x``."""
    if ours is None or other is None or not other or math.isnan(ours) or math.isnan(other):
        return "-"
    return f"{ours / other:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [*table(header, rows).splitlines(), ""]


def _grid(
    s: Summary, title: str, columns: list[tuple[str, str]], cell: Callable[[str, str], str], better: str
) -> list[str]:
    """A table of one metric per case and column, then ours / each baseline, from this run's medians."""
    cases = [case for case in s.labels if any(s.median(case, metric) is not None for _, metric in columns)]
    if not cases:
        return []
    lines = [
        f"#### {title}",
        "",
        *_table(
            ["case", *(c for c, _ in columns)],
            [[s.labels[case], *(cell(case, m) for _, m in columns)] for case in cases],
        ),
    ]
    if OURS in cases and len(cases) > 1:
        rows = [
            [s.labels[case], *(ratio(s.median(OURS, m), s.median(case, m)) for _, m in columns)]
            for case in cases
            if case != OURS
        ]
        lines += [f"Ours / baseline ({better}):", "", *_table(["baseline", *(c for c, _ in columns)], rows)]
    return lines


def markdown(s: Summary) -> str:
    """The report: machine and method, one table per workload, the targets, standalone cases, notes."""
    m = s.machine
    packages = ", ".join(f"{name} {m[name]}" for name in PACKAGES if name in m)
    sdk = dict(s.info.get("mcp130:echo") or s.info.get("mcp130:calls") or {})
    sdk.pop("extensions", None)
    lines = [
        "### Machine and method" + (" (SMOKE RUN: tiny counts, the figures mean nothing)" if s.smoke else ""),
        "",
        f"- {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory', '?')}; {m.get('os', '?')}; "
        f"{m.get('python', '?')}.",
        f"- Packages: {packages}.",
        *(
            [f"- mcp 1.30 environment: {', '.join(f'{k} {v}' for k, v in sorted(sdk.items()))}."]
            if sdk
            else []
        ),
        *(
            [f"- Our masker: {masker}."]
            if (masker := (s.info.get("ours:echo") or s.info.get("ours:calls") or {}).get("masker"))
            else []
        ),
        f"- Medians of {s.repeats} interleaved repeat(s); client and server in two processes on 127.0.0.1; "
        f"{m.get('duration', '?')}, load average {m.get('load', '?')} before and "
        f"{m.get('load after', '?')} after; {m.get('date', '')}, git {m.get('git', '?')}.",
        "",
    ]
    columns = [(PAYLOADS[p], p) for p in s.payloads]
    lines += _grid(
        s,
        "Streaming (messages/s)",
        [(c, f"stream:{p}") for c, p in columns],
        lambda case, k: rate(s.median(case, k)),
        "above 1.00x: ours is faster",
    )
    lines += _grid(
        s,
        "Client CPU per streamed message (one send, one receive)",
        [(c, f"cpu:{p}") for c, p in columns],
        lambda case, k: micros(s.median(case, k)),
        "below 1.00x: ours is cheaper",
    )
    lines += _grid(
        s,
        "Round trip, p50 / p99",
        [(c, f"rtt50:{p}") for c, p in columns],
        lambda case, k: (
            f"{micros(s.median(case, k))} / {micros(s.median(case, k.replace('rtt50', 'rtt99')))}"
        ),
        "p50; below 1.00x: ours is faster",
    )
    if any(s.median(case, f"deflate:{p}") is not None for case in s.labels for p in s.payloads):
        extensions = {
            case: s.info.get(f"{case}:echo", {}).get("extensions", "?")
            for case in ("mcp130", "mcp130-plain")
            if case in s.labels
        }
        lines += [
            "#### What the SDK compresses",
            "",
            "Negotiated: " + "; ".join(f"{s.labels[case]}: {ext}" for case, ext in extensions.items()) + ". "
            "Once permessage-deflate is negotiated, `websockets` compresses every data frame; the row gives "
            "the size after deflate with the negotiated window, over the payload's size.",
            "",
            *_table(
                ["", *(c for c, _ in columns)],
                [
                    [
                        "mcp 1.30 deflates to",
                        *(
                            f"{100 * (s.median('mcp130', f'deflate:{p}') or math.nan):.0f}%"
                            for _, p in columns
                        ),
                    ]
                ],
            ),
        ]
    if any(s.median(OURS, f"codec:{p}") is not None for p in s.payloads):
        lines += [
            "#### Our codec in-process: `decode` + `encode` per message, and the client CPU over it",
            "",
            *_table(
                ["", *(c for c, _ in columns)],
                [
                    ["decode + encode", *(micros(s.median(OURS, f"codec:{p}")) for _, p in columns)],
                    [
                        "client CPU / codec",
                        *(
                            ratio(s.median(OURS, f"cpu:{p}"), s.median(OURS, f"codec:{p}"))
                            for _, p in columns
                        ),
                    ],
                ],
            ),
        ]
    calls = [case for case in s.labels if s.median(case, "calls") is not None]
    if calls:
        lines += ["#### `call_tool` through the official client and server (sequential calls/s)", ""]
        lines += _table(
            ["case", "calls/s", "p50", "protocol", "ours / case"],
            [
                [
                    s.labels[c],
                    rate(s.median(c, "calls")),
                    micros(s.median(c, "call50")),
                    s.info.get(f"{c}:calls", {}).get("protocol", "?"),
                    ratio(s.median(OURS, "calls"), s.median(c, "calls")),
                ]
                for c in calls
            ],
        )
    levels = [(f"{n:,} conn.", str(n)) for n in s.levels]
    lines += _grid(
        s,
        "Concurrent connections streaming tools/call ~200 B: total messages/s; server peak RSS; "
        "seconds until the last / the median client was done; client CPU over that time "
        "(well under 100%: the client waited, a stall rather than work)",
        [(c, f"conc:{n}") for c, n in levels],
        lambda case, k: (
            f"{rate(s.median(case, k))}; {s.median(case, k.replace('conc', 'concrss')) or 0:.0f} MiB; "
            f"{s.median(case, k.replace('conc', 'concmax')) or 0:.2f} / "
            f"{s.median(case, k.replace('conc', 'concp50')) or 0:.2f} s; "
            f"{100 * (s.median(case, k.replace('conc', 'conccpu')) or 0):.0f}%"
        ),
        "throughput; above 1.00x: ours is faster",
    )
    idle = [case for case in s.labels if s.median(case, "idle_per_conn") is not None]
    if idle:
        lines += [f"#### Server memory with {s.idle_clients:,} idle connections", ""]
        lines += _table(
            ["case", "RSS before", "RSS with them", "per connection"],
            [
                [
                    s.labels[c],
                    f"{s.median(c, 'idle_rss0') or 0:.1f} MiB",
                    f"{s.median(c, 'idle_rss1') or 0:.1f} MiB",
                    f"{s.median(c, 'idle_per_conn') or 0:.1f} KiB",
                ]
                for c in idle
            ],
        )
    lines += _targets(s)
    for name, section in s.sections.items():
        lines += [f"<!-- standalone case: benchmarks/{name}.py -->", section.rstrip(), ""]
    if s.notes or s.unavailable or s.failures:
        lines += ["#### Notes", "", *(f"- {note}" for note in s.notes)]
        lines += [f"- unavailable: {case}: {why}" for case, why in s.unavailable.items()]
        lines += [f"- FAILED: {failure}" for failure in s.failures]
        lines.append("")
    # docs/performance.md includes the part between the markers.
    return "\n".join(["<!-- --8<-- [start:tables] -->", "", *lines, "<!-- --8<-- [end:tables] -->", ""])


def _targets(s: Summary) -> list[str]:
    rows: list[list[str]] = []
    for text, metric, baseline, baseline_metric, bound, higher in TARGETS:
        ours = s.median(OURS, metric)
        other = 1.0 if baseline is None else s.median(baseline, baseline_metric)
        if ours is None or not other:
            continue
        value = ours / other
        shown = (
            f"{value:.2f}x"
            if baseline is not None
            else (micros(value) if metric.startswith("cpu") else f"{value:.1f} KiB")
        )
        rows.append([text, shown, "yes" if (value >= bound if higher else value <= bound) else "**no**"])
    sizes = ", ".join(f"{PAYLOADS[p]} = {len(payload(p)):,} B" for p in REALISTIC)
    return (
        [
            "#### Issue 16 targets, in this run",
            "",
            f"Payload sizes: {sizes}.",
            "",
            *_table(["target", "measured", "met"], rows),
        ]
        if rows
        else []
    )


def plots(s: Summary, out: Path) -> list[Path]:
    """Streaming by payload (one bar per case) and throughput and memory by connection count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    cases = [case for case in s.labels if case in COLOURS]
    # Axes typed Any: matplotlib's stubs leave the **kwargs of every drawing call untyped.
    fig, axis = plt.subplots(figsize=(11, 4.8))
    axis = cast("Any", axis)
    width = 0.8 / max(1, len(cases))
    for i, case in enumerate(cases):
        heights = [s.median(case, f"stream:{p}") or 0.0 for p in s.payloads]
        axis.bar(
            [x + i * width for x in range(len(s.payloads))],
            heights,
            width,
            label=s.labels[case],
            color=COLOURS[case],
        )
    axis.set_xticks(
        [x + 0.4 - width / 2 for x in range(len(s.payloads))],
        [PAYLOADS[p] for p in s.payloads],
        rotation=20,
        fontsize=8,
    )
    axis.set_yscale("log")
    axis.set_ylabel("messages/s")
    axis.set_title("Streaming throughput by payload")
    axis.grid(visible=True, axis="y", which="both", alpha=0.3)
    written = [_save(fig, out / "bench-throughput-vs-size.png")]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    for case in cases:
        for axis, metric in ((left, "conc"), (right, "concrss")):
            points = [(n, s.median(case, f"{metric}:{n}")) for n in s.levels]
            xs, ys = (
                zip(*[(n, y) for n, y in points if y is not None], strict=True)
                if any(y is not None for _, y in points)
                else ((), ())
            )
            axis.plot(
                xs,
                ys,
                marker="o",
                color=COLOURS[case],
                label=s.labels[case],
                linewidth=2.5 if case == OURS else 1.5,
            )
    left.set(
        title="Total throughput vs connections (tools/call ~200 B)",
        ylabel="messages/s",
        xscale="log",
        yscale="log",
    )
    right.set(title="Server peak RSS vs connections", ylabel="MiB", xscale="log")
    for axis in (left, right):
        axis.set_xlabel("concurrent connections")
        axis.grid(visible=True, which="both", alpha=0.3)
    written.append(_save(fig, out / "bench-throughput-vs-connections.png"))
    return written


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    # matplotlib types legend's and savefig's **kwargs loosely; the calls themselves are plain.
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)  # pyright: ignore[reportUnknownMemberType]
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)  # pyright: ignore[reportUnknownMemberType]
    plt.close(fig)
    return path


def write(s: Summary, out: Path, plot_dir: Path | None) -> int:
    """Print the report; write ``latest.md`` and ``latest.json`` to ``out`` and the plots to ``plot_dir``.

    Returns:
        The exit status: 1 if anything failed, else 0.
    """
    out.mkdir(parents=True, exist_ok=True)
    if plot_dir is not None:
        plots(s, plot_dir)
    text = markdown(s)
    (out / "latest.md").write_text(text, encoding="utf-8")
    (out / "latest.json").write_text(s.to_json() + "\n", encoding="utf-8")
    print(f"\n{text}\nwrote {out / 'latest.md'} in {s.machine.get('duration', '?')}", flush=True)
    return 1 if s.failures else 0
