"""Logging for the ``trio-mcp-ws`` command: the one place that configures handlers.

Everything goes to stderr (``connect``'s stdout carries JSON-RPC only). Each record is
one line: an exception is shown as ``Type: message`` on the same line, and a full
traceback only at ``-vv``, so a gateway's log never fills with tracebacks for a child
that misbehaved. ``--log-format json`` writes one JSON object per line for log shippers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Final, Literal, cast

import trio

if sys.version_info < (3, 11):  # pragma: no cover - exercised by the 3.10 CI job
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["LogFormat", "cli_logger", "exception_summary", "leaf_exceptions", "setup_logging"]

LogFormat = Literal["text", "json"]

cli_logger = logging.getLogger("trio_mcp_ws.cli")
"""The CLI's own messages ("serving on ...", shutdown); shown at the default verbosity."""

# Loggers shown at INFO even without -v: the CLI's own lines and the children's stderr.
_ALWAYS_INFO: Final = ("trio_mcp_ws.cli", "trio_mcp_ws.child")

_ExcInfo = tuple[type[BaseException], BaseException, "TracebackType | None"] | tuple[None, None, None]


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc`` with every group flattened (``[exc]`` for a plain one)."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    group = cast("BaseExceptionGroup[BaseException]", exc)
    return [leaf for inner in group.exceptions for leaf in leaf_exceptions(inner)]


def exception_summary(exc: BaseException) -> str:
    """``Type: message`` of ``exc``; for a group, of its first leaf that is not a cancellation."""
    leaves = leaf_exceptions(exc)
    exc = next(
        (leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)), leaves[0] if leaves else exc
    )
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _OneLine(logging.Formatter):
    """The text format, with any exception summarised on the record's own line."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._tracebacks = tracebacks

    def formatException(self, ei: _ExcInfo) -> str:
        if self._tracebacks or ei[1] is None:
            return super().formatException(ei)
        return exception_summary(ei[1])

    def format(self, record: logging.LogRecord) -> str:
        if self._tracebacks:
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        summary = self.formatException(record.exc_info) if record.exc_info else ""
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        return f"{text}: {summary}" if summary else text


class _Json(logging.Formatter):
    """One JSON object per record: time, level, logger, message and, if any, the exception."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__()
        self._tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = exception_summary(record.exc_info[1])
            if self._tracebacks:
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(verbosity: int, log_format: LogFormat = "text") -> None:
    """Send every log record to stderr, one line each.

    ``verbosity`` 0 shows warnings, the CLI's own lines and the children's stderr; 1 shows
    every INFO record; 2 and more shows DEBUG records and full tracebacks.
    """
    tracebacks = verbosity >= 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _Json(tracebacks=tracebacks) if log_format == "json" else _OneLine(tracebacks=tracebacks)
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity else logging.WARNING)
    for name in _ALWAYS_INFO:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
