"""Signals and exit codes for the ``trio-mcp-ws`` command.

SIGINT and SIGTERM become a cancellation of the command's body (never a
``KeyboardInterrupt`` raised at some random await): ``serve`` then closes every
connection with 1001 and stops each child in order, ``connect`` closes with 1001. The
process exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as shells
expect. No exception, ExceptionGroup or traceback reaches the user: a failure is one line
on stderr, and the full traceback is logged only at ``-vv``.

Exit codes: 0 success; 1 a failure at run time (connect refused, handshake rejected,
abnormal close, address in use); 2 a usage error (bad option, command not found);
130 / 143 interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import TYPE_CHECKING, Final

import trio

from ._cli_log import cli_logger, exception_summary, leaf_exceptions

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "CliError", "run_command"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class CliError(Exception):
    """A failure to report as one line on stderr, with the exit status to use.

    Args:
        message: What went wrong and, where it helps, what to do about it.
        status: The exit status: `EXIT_FAILURE` or `EXIT_USAGE`.
    """

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def run_command(prog: str, body: Callable[[], Awaitable[int]]) -> int:
    """Run ``body`` under ``trio.run`` with SIGINT/SIGTERM as cancellation; the exit status.

    Every error ends as one line on stderr prefixed with ``prog`` (e.g.
    ``trio-mcp-ws serve: ...``).
    """
    try:
        return trio.run(_run, body)
    except KeyboardInterrupt:  # a Ctrl-C before the signal receiver was installed
        return 128 + signal.SIGINT
    except BaseException as exc:
        if _only(exc, KeyboardInterrupt):
            return 128 + signal.SIGINT
        if isinstance(exc, (SystemExit, GeneratorExit)):
            raise
        leaf = _first_leaf(exc)
        if isinstance(leaf, CliError):
            print(f"{prog}: {' '.join(str(leaf).split())}", file=sys.stderr, flush=True)
            return leaf.status
        logging.getLogger("trio_mcp_ws.cli").debug("internal error", exc_info=exc)
        print(
            f"{prog}: internal error: {exception_summary(exc)} (run with -vv for the traceback)",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILURE


async def _run(body: Callable[[], Awaitable[int]]) -> int:
    received: list[int] = []
    body_scope = trio.CancelScope()
    error: list[Exception] = []
    status = EXIT_OK
    with trio.open_signal_receiver(*_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if received:
                        cli_logger.warning("%s again: already shutting down", name)
                        continue
                    received.append(signum)
                    cli_logger.info("%s: shutting down", name)
                    body_scope.cancel()

            nursery.start_soon(watch)
            with body_scope:
                try:
                    status = await body()
                except Exception as exc:  # re-raised below, outside our nursery (no group)
                    error.append(exc)
            nursery.cancel_scope.cancel()
    if error:
        raise error[0]
    if received:
        return 128 + received[0]
    return status


def _only(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is ``kind``, or a group of nothing else (cancellations aside)."""
    leaves = [leaf for leaf in leaf_exceptions(exc) if not isinstance(leaf, trio.Cancelled)]
    return bool(leaves) and all(isinstance(leaf, kind) for leaf in leaves)


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception in ``exc`` that is neither a group nor a cancellation."""
    return next((leaf for leaf in leaf_exceptions(exc) if not isinstance(leaf, trio.Cancelled)), exc)
