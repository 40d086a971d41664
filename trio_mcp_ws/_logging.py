"""Logging that a remote peer cannot flood.

Anything a peer can cause (dropping connections mid-write, sending bad frames, failing
handshakes) is logged at DEBUG per event; where an operator should hear of it, a
`RateLimitedLog` adds at most one WARNING line per interval, process-wide, summarising how
many events it stands for.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import logging

__all__ = ["SUMMARY_INTERVAL", "RateLimitedLog"]

SUMMARY_INTERVAL: Final = 60.0
"""Seconds between two summary lines of one `RateLimitedLog`."""


class RateLimitedLog:
    """Counts events and logs them at WARNING at most once per `SUMMARY_INTERVAL`.

    The first event is logged at once; later ones are counted and reported in the next line
    an interval later (a line is written only when an event arrives, so an idle process
    writes nothing).
    """

    def __init__(self, logger: logging.Logger, what: str, *, interval: float = SUMMARY_INTERVAL) -> None:
        self.logger = logger
        self.what = what
        self.interval = interval
        self.total = 0
        """Every event recorded since the process started."""
        self._pending = 0
        self._next = float("-inf")

    def record(self, count: int = 1) -> None:
        """Count ``count`` events; log a summary if the last one is an interval old."""
        self.total += count
        self._pending += count
        self.logger.debug("%s: %d", self.what, count)
        now = time.monotonic()
        if now >= self._next:
            self.logger.warning(
                "%s: %d (%d in all; at most one such line per %gs)",
                self.what,
                self._pending,
                self.total,
                self.interval,
            )
            self._pending = 0
            self._next = now + self.interval
