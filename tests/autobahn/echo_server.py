"""A raw WebSocket echo server for ``wstest -m fuzzingclient``: ``python -m tests.autobahn.echo_server``.

Every message comes back as it arrived: text as text, binary as binary. Prints
``listening on 127.0.0.1:<port>`` once it accepts connections, then serves until killed.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Final

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

__all__ = ["MAX_MESSAGE_SIZE", "main", "serve"]

MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
"""Above the suite's largest message (16 MiB in cases 9.1.6 and 9.2.6)."""


async def _echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except ConnectionClosed:
        return


async def serve(
    host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the echo on ``host``:``port``; report the bound port through ``task_status``."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, _echo, host, port, None, max_message_size=MAX_MESSAGE_SIZE)
        )
        task_status.started(server.port)


async def _main(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve, host, port)
        print(f"listening on {host}:{bound}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.echo_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    try:
        trio.run(_main, args.host, args.port)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
