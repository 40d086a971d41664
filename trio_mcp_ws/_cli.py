"""The ``trio-mcp-ws`` command: ``demo``, ``serve`` and ``connect``.

The CLI only composes the public API; it is the one place that configures logging.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial
from typing import TYPE_CHECKING

import trio

from ._client import websocket_client
from ._demo import run_demo
from ._errors import TransportError
from ._listener import serve
from ._stdio import channel_to_lines, lines_to_channel, run_stdio_command
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose >= 2 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status: int = trio.run(partial(args.run, args))
    except KeyboardInterrupt:
        return 130
    except TransportError as exc:
        print(f"trio-mcp-ws {args.command_name}: {exc}", file=sys.stderr)
        return 1
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-mcp-ws", description="A Trio-native WebSocket transport for MCP."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run an MCP server and client over a loopback WebSocket")
    demo.set_defaults(run=_demo, command_name="demo")

    serve = commands.add_parser("serve", help="expose a stdio MCP server command over WebSocket")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--path", default="/mcp", help="URL path to serve (default: /mcp)")
    serve.add_argument("command", nargs=argparse.REMAINDER, help="the stdio server command, after --")
    serve.set_defaults(run=_serve, command_name="serve")

    connect = commands.add_parser("connect", help="bridge a WebSocket MCP server to this process's stdio")
    connect.add_argument("url", help="ws:// or wss:// URL of the server")
    connect.add_argument(
        "-H", "--header", action="append", default=[], metavar="NAME:VALUE", help="extra handshake header"
    )
    connect.set_defaults(run=_connect, command_name="connect")
    return parser


async def _demo(args: argparse.Namespace) -> int:
    return await run_demo(sys.stdout)


async def _serve(args: argparse.Namespace) -> int:
    command: list[str] = [part for part in args.command if part != "--"] if args.command else []
    if not command:
        print("trio-mcp-ws serve: give the stdio server command after --", file=sys.stderr)
        return 2

    async def started() -> None:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(
                partial(serve, partial(run_stdio_command, command), args.host, args.port, path=args.path)
            )
            print(f"serving {' '.join(command)} on {info.url}", file=sys.stderr, flush=True)

    await started()
    return 0  # pragma: no cover - serve runs until interrupted


async def _connect(args: argparse.Namespace) -> int:
    headers: list[tuple[str, str]] = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            print(f"trio-mcp-ws connect: header {header!r} is not NAME:VALUE", file=sys.stderr)
            return 2
        headers.append((name.strip(), value.strip()))
    async with websocket_client(args.url, headers=headers) as (read, write):
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
        async with stdin, stdout, trio.open_nursery() as nursery:

            async def upstream() -> None:
                await lines_to_channel(stdin, write, label="stdin")
                nursery.cancel_scope.cancel()  # the host closed our stdin: we are done

            async def downstream() -> None:
                await channel_to_lines(read, stdout, label=args.url)
                nursery.cancel_scope.cancel()  # the server went away

            nursery.start_soon(upstream)
            nursery.start_soon(downstream)
    return 0
