"""What every benchmark process shares: payloads, plans, results and the pipe protocol.

Standard library only: this module is imported by peers running in the mcp 1.30 virtual
environment too, which has neither trio nor trio-mcp-ws.

Processes talk over their standard streams, one line at a time:

- a server prints ``READY <port>`` once it listens, then serves until it is terminated (or
  until its lifetime runs out);
- a driver prints ``RESULT <json>`` when its plan is done; the idle plan also prints
  ``WARM`` and ``HOLDING`` and waits for a line on standard input after each, so the
  orchestrator can measure the server's memory at those two moments.
"""

from __future__ import annotations

import json
import math
import random
import string
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Final

# Payload sizes: the JSON text of one JSON-RPC request, in bytes. "~1 MB" stays below the
# 1 MiB default message limit of websockets and trio-websocket so every stack can carry it.
SIZES: Final = (150, 10_000, 100_000, 1_000_000)
SIZE_LABELS: Final = {150: "~150 B", 10_000: "~10 KB", 100_000: "~100 KB", 1_000_000: "~1 MB"}

# Limits given to the raw peers so a ~1 MB message fits with room to spare.
MAX_MESSAGE: Final = 4 * 1024 * 1024

# Every peer process exits on its own after this many seconds, whatever the orchestrator does.
SERVER_LIFETIME: Final = 900.0

READY: Final = "READY"
RESULT: Final = "RESULT"
WARM: Final = "WARM"
HOLDING: Final = "HOLDING"

_ALPHABET: Final = string.ascii_letters + string.digits


def message_text(size: int) -> str:
    """A JSON-RPC request whose JSON text is exactly ``size`` bytes (at least ~70).

    The data is pseudo-random letters and digits, fixed per size: realistic enough that
    permessage-deflate (which the SDK 1.30 stack negotiates) cannot shrink it to nothing.
    """
    head = '{"jsonrpc":"2.0","id":1,"method":"bench/echo","params":{"data":"'
    tail = '"}}'
    fill = max(0, size - len(head) - len(tail))
    rng = random.Random(size)
    return head + "".join(rng.choices(_ALPHABET, k=fill)) + tail


@dataclass
class EchoPlan:
    """Stream then ping-pong, per size, over one connection."""

    sizes: list[int]
    stream_n: dict[int, int]
    rtt_n: dict[int, int]
    warmup: int


@dataclass
class ConcurrencyPlan:
    """``clients`` connections, opened first, then all streaming ``per_client`` messages at once."""

    clients: int
    per_client: int
    size: int
    parallel_connects: int = 50


@dataclass
class IdlePlan:
    """``clients`` connections opened and held idle while the server's memory is measured."""

    clients: int
    parallel_connects: int = 50


@dataclass
class CallsPlan:
    """``count`` sequential ``call_tool`` calls through one MCP session, after ``warmup``."""

    count: int
    warmup: int


@dataclass
class Plan:
    """One driver run: exactly one of the workloads, with a hard time budget in seconds."""

    budget: float
    echo: EchoPlan | None = None
    concurrency: ConcurrencyPlan | None = None
    idle: IdlePlan | None = None
    calls: CallsPlan | None = None

    def to_json(self) -> str:
        """Serialise for a driver's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The inverse of `to_json` (JSON object keys come back as strings; sizes are ints)."""
        raw: dict[str, Any] = json.loads(text)
        plan = cls(budget=float(raw["budget"]))
        if raw.get("echo"):
            echo: dict[str, Any] = raw["echo"]
            plan.echo = EchoPlan(
                sizes=[int(s) for s in echo["sizes"]],
                stream_n={int(k): int(v) for k, v in echo["stream_n"].items()},
                rtt_n={int(k): int(v) for k, v in echo["rtt_n"].items()},
                warmup=int(echo["warmup"]),
            )
        if raw.get("concurrency"):
            plan.concurrency = ConcurrencyPlan(**raw["concurrency"])
        if raw.get("idle"):
            plan.idle = IdlePlan(**raw["idle"])
        if raw.get("calls"):
            plan.calls = CallsPlan(**raw["calls"])
        return plan


@dataclass
class Results:
    """What a driver reports; every field is optional, filled by the workload that ran."""

    stream_seconds: dict[int, float] = field(default_factory=dict[int, float])
    stream_n: dict[int, int] = field(default_factory=dict[int, int])
    stream_cpu_us: dict[int, float] = field(default_factory=dict[int, float])
    rtt_us: dict[int, list[float]] = field(default_factory=dict[int, list[float]])
    concurrency_seconds: float | None = None
    connect_seconds: float | None = None
    messages: int | None = None
    calls_seconds: float | None = None
    call_latency_us: list[float] = field(default_factory=list[float])
    calls: int | None = None
    info: dict[str, str] = field(default_factory=dict[str, str])

    def to_json(self) -> str:
        """Serialise for the ``RESULT`` line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Results:
        """The inverse of `to_json`."""
        raw: dict[str, Any] = json.loads(text)
        return cls(
            stream_seconds={int(k): float(v) for k, v in raw["stream_seconds"].items()},
            stream_n={int(k): int(v) for k, v in raw["stream_n"].items()},
            stream_cpu_us={int(k): float(v) for k, v in raw["stream_cpu_us"].items()},
            rtt_us={int(k): [float(x) for x in v] for k, v in raw["rtt_us"].items()},
            concurrency_seconds=raw["concurrency_seconds"],
            connect_seconds=raw["connect_seconds"],
            messages=raw["messages"],
            calls_seconds=raw["calls_seconds"],
            call_latency_us=[float(x) for x in raw["call_latency_us"]],
            calls=raw["calls"],
            info={str(k): str(v) for k, v in raw["info"].items()},
        )


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def say(*parts: str) -> None:
    """Print one protocol line and flush it at once (the orchestrator is waiting for it)."""
    sys.stdout.write(" ".join(parts) + "\n")
    sys.stdout.flush()
