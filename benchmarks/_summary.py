"""Everything one run measured: what the runner fills, ``latest.json`` stores and the report reads."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Final

# Whose versions the machine section records.
PACKAGES: Final = ("trio-mcp-ws", "trio", "trio-websocket", "wsproto", "mcp", "pydantic-core", "websockets")


@dataclass
class Summary:
    """Per case and metric, one value per repeat, and what the run was.

    Metric names are ``kind:detail``: ``stream:<payload>`` (messages/s), ``cpu:<payload>``
    (client CPU us per message), ``rtt50:``/``rtt99:<payload>`` (us), ``codec:``/``deflate:<payload>``
    (in-process figures), ``conc:``/``concrss:``/``concp50:``/``connect:<clients>``, ``calls``,
    ``call50``, ``idle_rss0``, ``idle_rss1``, ``idle_per_conn``.
    """

    smoke: bool
    repeats: int
    payloads: list[str]
    levels: list[int]
    idle_clients: int
    machine: dict[str, str] = field(default_factory=dict[str, str])
    labels: dict[str, str] = field(default_factory=dict[str, str])
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict[str, dict[str, list[float]]])
    info: dict[str, dict[str, str]] = field(default_factory=dict[str, dict[str, str]])
    unavailable: dict[str, str] = field(default_factory=dict[str, str])
    failures: list[str] = field(default_factory=list[str])
    notes: list[str] = field(default_factory=list[str])
    # The markdown sections the standalone ``benchmarks/case_*.py`` modules printed, by module.
    sections: dict[str, str] = field(default_factory=dict[str, str])

    def add(self, case: str, metric: str, value: float) -> None:
        """Record one repeat's value."""
        self.samples.setdefault(case, {}).setdefault(metric, []).append(value)

    def median(self, case: str, metric: str) -> float | None:
        """The median over repeats, or None if never measured."""
        values = self.samples.get(case, {}).get(metric)
        return statistics.median(values) if values else None

    def to_json(self) -> str:
        """Everything, with the medians alongside for readers of ``latest.json``."""
        medians = {
            case: {metric: statistics.median(values) for metric, values in metrics.items()}
            for case, metrics in self.samples.items()
        }
        return json.dumps({**asdict(self), "medians": medians}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Summary:
        """Read back what `to_json` wrote (for ``--report-only``)."""
        raw = json.loads(text)
        raw.pop("medians", None)
        return cls(**raw)
