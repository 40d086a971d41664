"""The command line every peer module shares: ``serve KIND`` or ``drive STACK --url --plan``.

Standard library and anyio only, like `benchmarks._driver`, so the SDK 1.30 peers can use it.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._driver import run
from ._spec import Plan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._driver import Stack


@dataclass(frozen=True)
class Options:
    """Settings a peer may take from its command line; ``None``: the stack's own default.

    Attributes:
        buffer: Bytes asked of the socket per receive (trio-websocket's ``receive_buffer_size``).
        queue: Complete messages buffered by the connection (its ``message_queue_size``).
    """

    buffer: int | None = None
    queue: int | None = None


def main(
    argv: Sequence[str] | None,
    *,
    serve: Callable[[str, Options], None],
    stack: Callable[[str, Options], Stack[Any]],
    backend: str,
) -> None:
    """Parse the peer command line and run a server or a driver.

    Args:
        argv: The arguments (``None``: the process's own).
        serve: Runs the server ``KIND`` with the given `Options` until terminated; it
            prints ``READY <port>`` once listening.
        stack: Builds the client stack ``STACK``.
        backend: The anyio backend the drivers of this module run on.
    """
    # The SDK 1.30 transports are deprecated and say so on every call; that is not news here.
    warnings.simplefilter("ignore", DeprecationWarning)
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run a server until terminated")
    serve_cmd.add_argument("kind")
    drive_cmd = sub.add_parser("drive", help="run one plan against a server")
    drive_cmd.add_argument("stack")
    drive_cmd.add_argument("--url", required=True)
    drive_cmd.add_argument("--plan", required=True, help="a Plan as JSON")
    for command in (serve_cmd, drive_cmd):
        command.add_argument("--buffer", type=int, default=None, help="receive buffer size, bytes")
        command.add_argument("--queue", type=int, default=None, help="message queue size")
    args = parser.parse_args(argv)
    options = Options(buffer=args.buffer, queue=args.queue)
    if args.command == "serve":
        kind: str = args.kind
        serve(kind, options)
    else:
        name: str = args.stack
        url: str = args.url
        plan_json: str = args.plan
        run(stack(name, options), url, Plan.from_json(plan_json), backend=backend)
