"""What every benchmark process shares: the payloads, the plan, the results and the pipe protocol.

Standard library only: the mcp 1.30 peers import this module too, in an environment that has
neither trio nor trio-mcp-ws.

Processes talk over their standard streams, one line at a time: a server prints
``READY <port>`` once it listens and serves until it is terminated; a driver prints
``RESULT <json>`` when its plan is done. The idle plan also prints ``WARM`` and ``HOLDING`` and
waits for a line on standard input after each, so the runner can read the server's memory then.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import random
import string
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Final

READY: Final = "READY"
RESULT: Final = "RESULT"
WARM: Final = "WARM"
HOLDING: Final = "HOLDING"

# A limit for the raw peers that every payload fits under (the largest is 1,000,000 bytes).
MAX_MESSAGE: Final = 4 * 1024 * 1024
# Every peer exits on its own after this many seconds, whatever happens to the runner.
LIFETIME: Final = 900.0

# The payloads, in table order: name -> label. The first four are synthetic requests of an exact
# size (random letters and digits, which deflate cannot shrink to nothing); the rest are what MCP
# traffic looks like, built from a fixed seed so every run and every stack sends the same bytes.
PAYLOADS: Final = {
    "150": "~150 B",
    "10k": "~10 KB",
    "100k": "~100 KB",
    "1m": "~1 MB",
    "tools-call": "tools/call ~200 B",
    "tools-list": "tools/list ~40 KB",
    "text": "text ~100 KB",
    "image": "base64 image ~150 KB",
    "mixed": "mixed ~250 KB",
}
REALISTIC: Final = ("tools-call", "tools-list", "text", "image", "mixed")
_SYNTHETIC: Final = {"150": 150, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
_SEED: Final = 2026
_VOCABULARY: Final = (
    "the a of to and in is for on with that by this be from are as at or an it not which can "
    "request response server client tool resource prompt message value field list returns when "
    "file path query result error token user session data time name type default optional number "
    "string object array schema update create delete read write search issue repository"
)
_WORDS: Final = _VOCABULARY.split()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(_WORDS, k=words)).capitalize() + "."


def _prose(rng: random.Random, size: int) -> str:
    paragraphs: list[str] = []
    while sum(map(len, paragraphs)) < size:
        paragraphs.append(" ".join(_sentence(rng, rng.randint(6, 24)) for _ in range(rng.randint(3, 8))))
    return "\n\n".join(paragraphs)[:size]


def _image(rng: random.Random, size: int) -> dict[str, Any]:
    # Random bytes stand in for an image: PNG and JPEG data are already compressed.
    return {
        "type": "image",
        "mimeType": "image/png",
        "data": base64.b64encode(rng.randbytes(size * 3 // 4)).decode(),
    }


def _tool(rng: random.Random) -> dict[str, Any]:
    params = {
        rng.choice(_WORDS[20:]) + f"_{i}": {
            "type": rng.choice(["string", "number", "boolean"]),
            "description": _sentence(rng, rng.randint(6, 16)),
        }
        for i in range(rng.randint(2, 6))
    }
    return {
        "name": f"{rng.choice(_WORDS[60:])}_{rng.choice(_WORDS[20:60])}",
        "description": _sentence(rng, rng.randint(15, 45)),
        "inputSchema": {"type": "object", "properties": params, "required": list(params)[:2]},
        "annotations": {"readOnlyHint": rng.random() < 0.5},
    }


def _result(result: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 7, "result": result}, separators=(",", ":"))


@functools.cache
def payload(name: str) -> str:
    """The JSON text of payload ``name`` (a key of `PAYLOADS`): always the same for a name."""
    rng = random.Random(f"{_SEED}:{name}")
    if name in _SYNTHETIC:
        head, tail = '{"jsonrpc":"2.0","id":1,"method":"bench/echo","params":{"data":"', '"}}'
        fill = max(0, _SYNTHETIC[name] - len(head) - len(tail))
        return head + "".join(rng.choices(string.ascii_letters + string.digits, k=fill)) + tail
    if name == "tools-call":
        arguments = {
            "repository": "octo-org/widgets",
            "query": "label:bug state:open sort:updated",
            "limit": 20,
        }
        params = {"name": "search_issues", "arguments": arguments, "_meta": {"progressToken": "7f3c9e"}}
        return json.dumps(
            {"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": params}, separators=(",", ":")
        )
    if name == "tools-list":
        tools: list[dict[str, Any]] = []
        while len(json.dumps(tools)) < 40_000:
            tools.append(_tool(rng))
        return _result({"tools": tools})
    if name == "text":
        return _result({"content": [{"type": "text", "text": _prose(rng, 100_000)}], "isError": False})
    if name == "image":
        return _result({"content": [_image(rng, 150_000)], "isError": False})
    if name == "mixed":
        rows = [
            {
                "id": i,
                "name": _sentence(rng, 3),
                "score": round(rng.random() * 100, 3),
                "tags": rng.sample(_WORDS, 3),
            }
            for i in range(1_200)
        ]
        content = [{"type": "text", "text": _prose(rng, 50_000)}, _image(rng, 100_000)]
        return _result({"content": content, "structuredContent": {"rows": rows}, "isError": False})
    raise KeyError(name)


def counts(name: str, *, smoke: bool) -> tuple[int, int]:
    """How many messages to stream and how many round trips to time for payload ``name``.

    About 100 MB streamed per payload in a full run (at most 20,000 messages), a tenth of a MB
    in a smoke run; round trips scale the same way within their own bounds.
    """
    size = len(payload(name))
    if smoke:
        return min(300, max(10, 1_000_000 // size)), min(50, max(5, 300_000 // size))
    return min(20_000, max(100, 100_000_000 // size)), min(2_000, max(50, 30_000_000 // size))


@dataclass
class Plan:
    """One driver run: ``workload`` (``echo``, ``calls``, ``concurrency`` or ``idle``) and its counts."""

    workload: str
    budget: float
    payloads: list[str] = field(default_factory=list[str])
    smoke: bool = False
    calls: int = 0
    clients: int = 0
    per_client: int = 0
    parallel_connects: int = 50

    def to_json(self) -> str:
        """For the driver's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The inverse of `to_json`."""
        return cls(**json.loads(text))


@dataclass
class Results:
    """What a driver reports; each workload fills its own fields. Keys are payload names."""

    stream_seconds: dict[str, float] = field(default_factory=dict[str, float])
    stream_n: dict[str, int] = field(default_factory=dict[str, int])
    cpu_us: dict[str, float] = field(default_factory=dict[str, float])
    rtt_us: dict[str, list[float]] = field(default_factory=dict[str, list[float]])
    # Per payload, anything else a stack measured in-process (our codec cost, deflate ratios).
    extra: dict[str, dict[str, float]] = field(default_factory=dict[str, dict[str, float]])
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    connect_seconds: float = 0.0
    finish_seconds: list[float] = field(default_factory=list[float])
    messages: int = 0
    latency_us: list[float] = field(default_factory=list[float])
    info: dict[str, str] = field(default_factory=dict[str, str])

    def to_json(self) -> str:
        """For the ``RESULT`` line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Results:
        """The inverse of `to_json`."""
        return cls(**json.loads(text))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(max(1, math.ceil(q * len(ordered))), len(ordered)) - 1]


def say(*parts: str) -> None:
    """Print one protocol line and flush it at once (the runner is waiting for it)."""
    sys.stdout.write(" ".join(parts) + "\n")
    sys.stdout.flush()
