"""Read the Autobahn suite's JSON reports and decide whether a run passed.

``wstest`` writes ``index.json`` into its report folder: for each agent, each case id
mapped to the case's ``behavior`` (the frames exchanged) and ``behaviorClose`` (the
closing handshake), each one of `BEHAVIOURS`, plus the name of a per-case report holding
the description, the expectation and what actually happened. A run passes when neither
verdict of any case is FAILED or UNIMPLEMENTED and the report holds the cases we expected;
NON-STRICT (allowed by the RFC, not the strictest reading) and INFORMATIONAL (no verdict,
for instance the close reason echoed) cases are listed, never hidden.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

__all__ = [
    "BEHAVIOURS",
    "CaseResult",
    "ReportError",
    "RoleReport",
    "case_key",
    "load_role_report",
    "parse_index",
]

BEHAVIOURS: Final = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
"""Every verdict the suite gives, best first."""

_BAD: Final = frozenset({"FAILED", "UNIMPLEMENTED"})
_LISTED: Final = ("NON-STRICT", "INFORMATIONAL")
_EXCERPT: Final = 300
"""Characters of a per-case report's text fields quoted when a case is listed."""


class ReportError(Exception):
    """A report folder that cannot be read as a run of our agent (missing, malformed, empty)."""


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key for case ids, numerically per part: ``"9.1.10"`` after ``"9.1.9"``."""
    return tuple(int(part) for part in case_id.split("."))


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's verdicts, and the texts that explain them (from the per-case report).

    Attributes:
        case_id: The suite's case id, e.g. ``"6.4.3"``.
        behavior: The verdict on the frames exchanged.
        behavior_close: The verdict on the closing handshake.
        remote_close_code: The close code our side sent, if any.
        duration_ms: How long the case took.
        description: What the case does (empty when the per-case report is missing).
        expectation: What the suite expects.
        result: What happened, in the suite's words.
        result_close: What happened at close, in the suite's words.
    """

    case_id: str
    behavior: str
    behavior_close: str
    remote_close_code: int | None
    duration_ms: int
    description: str = ""
    expectation: str = ""
    result: str = ""
    result_close: str = ""

    @property
    def verdict(self) -> str:
        """The worse of the two verdicts (FAILED over UNIMPLEMENTED over INFORMATIONAL ...)."""
        return max(self.behavior, self.behavior_close, key=_rank)

    def explain(self) -> str:
        """One indented paragraph: the verdicts, the close code and the suite's texts."""
        lines = [
            f"  {self.case_id}: behavior {self.behavior}, close {self.behavior_close}, "
            f"our close code {self.remote_close_code}, {self.duration_ms} ms"
        ]
        for label, text in (
            ("case", self.description),
            ("expected", self.expectation),
            ("result", self.result),
            ("close", self.result_close),
        ):
            if text:
                lines.append(f"      {label}: {_excerpt(text)}")
        return "\n".join(lines)


def _rank(behaviour: str) -> int:
    # Unknown verdicts rank worst: a suite upgrade inventing one must not pass silently.
    return BEHAVIOURS.index(behaviour) if behaviour in BEHAVIOURS else len(BEHAVIOURS)


def _excerpt(text: str) -> str:
    flat = " ".join(text.replace("<b>", "").replace("</b>", "").split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 3] + "..."


@dataclass(frozen=True, slots=True)
class RoleReport:
    """Every case of one role (our server or our client), sorted by case id.

    Attributes:
        role: ``"server"`` (the suite was the client) or ``"client"``.
        agent: The agent name the cases were recorded under.
        cases: The cases, in case-id order.
    """

    role: str
    agent: str
    cases: tuple[CaseResult, ...]

    def counts(self) -> dict[str, int]:
        """How many cases got each verdict (the worse of the two), every verdict present."""
        counted = Counter(case.verdict for case in self.cases)
        return {behaviour: counted.get(behaviour, 0) for behaviour in BEHAVIOURS} | {
            behaviour: n for behaviour, n in counted.items() if behaviour not in BEHAVIOURS
        }

    def with_verdict(self, *verdicts: str) -> list[CaseResult]:
        """The cases whose (worse) verdict is one of ``verdicts``."""
        return [case for case in self.cases if case.verdict in verdicts]

    def problems(self, expected_ids: Iterable[str] | None = None) -> list[str]:
        """Why this run does not pass; empty when it does.

        Args:
            expected_ids: The case ids that must all be there (and no others), when known,
                e.g. the other role's, since both roles run the same case list.
        """
        problems = [
            f"{case.case_id} is {case.verdict}"
            for case in self.cases
            if case.verdict in _BAD or case.verdict not in BEHAVIOURS
        ]
        if not self.cases:
            problems.append("the report holds no cases")
        if expected_ids is not None:
            got = {case.case_id for case in self.cases}
            wanted = set(expected_ids)
            missing = sorted(wanted - got, key=case_key)
            extra = sorted(got - wanted, key=case_key)
            if missing:
                problems.append(f"{len(missing)} cases missing: {', '.join(missing)}")
            if extra:
                problems.append(f"{len(extra)} unexpected cases: {', '.join(extra)}")
        return problems

    def summary(self) -> str:
        """The counts on one line, then every case that is not plainly OK, explained."""
        counts = ", ".join(f"{n} {behaviour}" for behaviour, n in self.counts().items())
        lines = [f"our {self.role} ({self.agent}): {len(self.cases)} cases: {counts}"]
        for verdict in (*_LISTED, *sorted(_BAD)):
            listed = self.with_verdict(verdict)
            if listed:
                lines.append(f" {verdict} ({len(listed)}):")
                lines.extend(case.explain() for case in listed)
        unknown = [case for case in self.cases if case.verdict not in BEHAVIOURS]
        if unknown:
            lines.append(f" unknown verdicts ({len(unknown)}):")
            lines.extend(case.explain() for case in unknown)
        return "\n".join(lines)


def _text(details: Mapping[str, Any], key: str) -> str:
    value = details.get(key)
    return value if isinstance(value, str) else ""


def parse_index(
    index: Mapping[str, Any], agent: str, details: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[CaseResult, ...]:
    """Turn a parsed ``index.json`` into our agent's cases, sorted by case id.

    Args:
        index: The parsed ``index.json``: agent -> case id -> verdicts.
        agent: Whose cases to take.
        details: Per-case reports by case id, where read; their texts explain the verdicts.

    Raises:
        ReportError: The agent is absent or an entry lacks its verdicts.
    """
    if agent not in index:
        raise ReportError(f"no results for agent {agent!r} (agents: {sorted(index)})")
    cases: list[CaseResult] = []
    for case_id, entry in index[agent].items():
        try:
            behavior, behavior_close = str(entry["behavior"]), str(entry["behaviorClose"])
        except (KeyError, TypeError) as exc:
            raise ReportError(f"case {case_id}: no verdict in {entry!r}") from exc
        code = entry.get("remoteCloseCode")
        extra = (details or {}).get(case_id, {})
        cases.append(
            CaseResult(
                case_id=case_id,
                behavior=behavior,
                behavior_close=behavior_close,
                remote_close_code=code if isinstance(code, int) else None,
                duration_ms=int(entry.get("duration") or 0),
                description=_text(extra, "description"),
                expectation=_text(extra, "expectation"),
                result=_text(extra, "result"),
                result_close=_text(extra, "resultClose"),
            )
        )
    return tuple(sorted(cases, key=lambda case: case_key(case.case_id)))


def load_role_report(folder: Path, role: str, agent: str) -> RoleReport:
    """Read ``folder/index.json`` and, for every case not plainly OK, its per-case report.

    Raises:
        ReportError: The index is missing or unreadable, or the agent is absent from it.
    """
    index_path = folder / "index.json"
    try:
        loaded: Any = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {index_path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ReportError(f"{index_path} is not a JSON object")
    index = cast("dict[str, Any]", loaded)
    cases: Any = index.get(agent)
    # Only the cases to explain need their (large: wire logs) per-case reports read.
    details: dict[str, Any] = {}
    for case_id, entry in cast("dict[str, Any]", cases if isinstance(cases, dict) else {}).items():
        if not isinstance(entry, dict):
            continue
        fields = cast("dict[str, Any]", entry)
        if fields.get("behavior") == "OK" and fields.get("behaviorClose") == "OK":
            continue
        try:
            details[case_id] = json.loads((folder / str(fields["reportfile"])).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            continue  # the verdict still counts; only its explanation is lost
    return RoleReport(role=role, agent=agent, cases=parse_index(index, agent, details))
