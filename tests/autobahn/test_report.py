"""The Autobahn report checker: what passes, what fails, what gets listed (no suite needed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.autobahn.report import ReportError, RoleReport, case_key, load_role_report, parse_index

if TYPE_CHECKING:
    from pathlib import Path


def _entry(behavior: str, close: str = "OK", code: int | None = 1000, report: str = "") -> dict[str, Any]:
    return {
        "behavior": behavior,
        "behaviorClose": close,
        "duration": 3,
        "remoteCloseCode": code,
        "reportfile": report,
    }


def _write(folder: Path, index: dict[str, Any], details: dict[str, dict[str, Any]] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").write_text(json.dumps(index))
    for name, content in (details or {}).items():
        (folder / name).write_text(json.dumps(content))


def test_case_ids_sort_numerically() -> None:
    ids = ["9.1.10", "10.1.1", "9.1.9", "1.1.2", "2.10", "2.9"]
    assert sorted(ids, key=case_key) == ["1.1.2", "2.9", "2.10", "9.1.9", "9.1.10", "10.1.1"]


def test_a_clean_run_passes_and_lists_non_strict_and_informational(tmp_path: Path) -> None:
    index = {
        "agent": {
            "1.1.1": _entry("OK"),
            "3.2": _entry("NON-STRICT", code=None, report="c32.json"),
            "7.13.1": _entry("INFORMATIONAL", "INFORMATIONAL", code=None, report="c713.json"),
        }
    }
    details = {
        "c32.json": {"description": "RSV = 2", "expectation": "echo, then fail", "result": "matched"},
        "c713.json": {"description": "close code 5000", "result": "undefined by the spec"},
    }
    _write(tmp_path, index, details)
    report = load_role_report(tmp_path, "server", "agent")
    assert [case.case_id for case in report.cases] == ["1.1.1", "3.2", "7.13.1"]
    assert report.counts() == {"OK": 1, "NON-STRICT": 1, "INFORMATIONAL": 1, "UNIMPLEMENTED": 0, "FAILED": 0}
    assert report.problems() == []
    summary = report.summary()
    assert "3 cases: 1 OK, 1 NON-STRICT, 1 INFORMATIONAL, 0 UNIMPLEMENTED, 0 FAILED" in summary
    assert "3.2: behavior NON-STRICT" in summary
    assert "case: RSV = 2" in summary
    assert "result: undefined by the spec" in summary
    assert "1.1.1" not in summary


@pytest.mark.parametrize(
    ("behavior", "close"),
    [("FAILED", "OK"), ("OK", "FAILED"), ("NON-STRICT", "FAILED"), ("UNIMPLEMENTED", "OK"), ("WEIRD", "OK")],
)
def test_a_failed_close_or_frame_verdict_fails_the_run(tmp_path: Path, behavior: str, close: str) -> None:
    _write(tmp_path, {"agent": {"1.1.1": _entry("OK"), "6.4.1": _entry(behavior, close, report="x.json")}})
    report = load_role_report(tmp_path, "client", "agent")
    verdict = report.cases[1].verdict
    assert verdict in {"FAILED", "UNIMPLEMENTED", "WEIRD"}
    assert report.problems() == [f"6.4.1 is {verdict}"]
    assert f"6.4.1: behavior {behavior}, close {close}" in report.summary()


def test_missing_and_unexpected_cases_fail_the_run() -> None:
    index = {"agent": {"1.1.1": _entry("OK"), "1.1.3": _entry("OK")}}
    report = RoleReport("client", "agent", parse_index(index, "agent"))
    assert report.problems(["1.1.1", "1.1.2"]) == ["1 cases missing: 1.1.2", "1 unexpected cases: 1.1.3"]
    assert report.problems(["1.1.3", "1.1.1"]) == []


def test_an_empty_report_fails() -> None:
    assert RoleReport("server", "agent", parse_index({"agent": {}}, "agent")).problems() == [
        "the report holds no cases"
    ]


def test_unreadable_reports_raise(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="cannot read"):
        load_role_report(tmp_path, "server", "agent")
    _write(tmp_path, {"someone-else": {"1.1.1": _entry("OK")}})
    with pytest.raises(ReportError, match="no results for agent 'agent'"):
        load_role_report(tmp_path, "server", "agent")
    _write(tmp_path, {"agent": {"1.1.1": {"duration": 1}}})
    with pytest.raises(ReportError, match=r"case 1\.1\.1: no verdict"):
        load_role_report(tmp_path, "server", "agent")
    (tmp_path / "index.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="not a JSON object"):
        load_role_report(tmp_path, "server", "agent")


def test_a_missing_per_case_report_keeps_the_verdict(tmp_path: Path) -> None:
    _write(tmp_path, {"agent": {"2.1": _entry("FAILED", report="gone.json")}})
    report = load_role_report(tmp_path, "server", "agent")
    assert report.problems() == ["2.1 is FAILED"]
    assert report.cases[0].description == ""
