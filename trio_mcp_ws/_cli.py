"""The ``trio-mcp-ws`` command: ``demo``, ``serve`` and ``connect``.

The CLI composes the public API only. Its jobs live in one module each: options
(``_cli_args``), signals and exit codes (``_cli_signals``), logging (``_cli_log``), the
``serve`` gateway (``_cli_serve``) and the ``connect`` bridge (``_cli_connect``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ._cli_args import PROG, build_parser
from ._cli_log import setup_logging
from ._cli_signals import run_command

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see ``_cli_signals`` for the codes)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    setup_logging(args.verbose, args.log_format)
    _raise_open_files_limit()
    return run_command(f"{PROG} {args.command_name}", partial(args.run, args))


def _raise_open_files_limit() -> None:
    """Raise this process's soft open-files limit to its hard one.

    A gateway holds a socket per client and per pending handshake; the common soft limit of
    1024 would cap how many stalled handshakes `serve` can read at once (and so how well it
    sheds a slowloris crowd). The library leaves process limits alone; the CLI owns them.
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX, or not allowed
        pass
