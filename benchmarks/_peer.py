"""The command line every peer module shares: ``serve KIND`` or ``drive STACK --url --plan``.

Standard library and anyio only, like `benchmarks._driver`, so the SDK 1.30 peers can use it.
"""

from __future__ import annotations

import argparse
import warnings
from typing import TYPE_CHECKING, Any

from ._driver import run
from ._spec import Plan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._driver import Stack


def main(
    argv: Sequence[str] | None,
    *,
    serve: Callable[[str, int | None], None],
    stack: Callable[[str, int | None], Stack[Any]],
    backend: str,
) -> None:
    """Parse the peer command line and run a server or a driver.

    Args:
        argv: The arguments (``None``: the process's own).
        serve: Runs the server ``KIND`` (with an optional receive buffer size) until
            terminated; it prints ``READY <port>`` once listening.
        stack: Builds the client stack ``STACK``.
        backend: The anyio backend the drivers of this module run on.
    """
    # The SDK 1.30 transports are deprecated and say so on every call; that is not news here.
    warnings.simplefilter("ignore", DeprecationWarning)
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run a server until terminated")
    serve_cmd.add_argument("kind")
    serve_cmd.add_argument("--buffer", type=int, default=None, help="receive buffer size, bytes")
    drive_cmd = sub.add_parser("drive", help="run one plan against a server")
    drive_cmd.add_argument("stack")
    drive_cmd.add_argument("--url", required=True)
    drive_cmd.add_argument("--plan", required=True, help="a Plan as JSON")
    drive_cmd.add_argument("--buffer", type=int, default=None, help="receive buffer size, bytes")
    args = parser.parse_args(argv)
    buffer: int | None = args.buffer
    if args.command == "serve":
        kind: str = args.kind
        serve(kind, buffer)
    else:
        name: str = args.stack
        url: str = args.url
        plan_json: str = args.plan
        run(stack(name, buffer), url, Plan.from_json(plan_json), backend=backend)
