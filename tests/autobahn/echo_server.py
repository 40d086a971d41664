"""A raw WebSocket echo server on our driver, for ``wstest -m fuzzingclient``.

``python -m tests.autobahn.echo_server`` listens on 127.0.0.1 (a free port unless
``--port`` says otherwise), prints ``listening on 127.0.0.1:<port>`` once it accepts
connections, and serves until killed. Each connection is our `WsConnection` (wsproto over
a Trio TCP stream) accepted without a subprotocol, running `echo`: every message comes back
as it arrived.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial

import trio

from tests.autobahn._echo import LIMITS, MAX_MESSAGE_SIZE, echo
from trio_mcp_ws import Deflate, HandshakeError
from trio_mcp_ws._wsconn import read_request

__all__ = ["MAX_MESSAGE_SIZE", "main", "serve"]

logger = logging.getLogger(__name__)


async def _handle(stream: trio.SocketStream, *, direct: bool, compression: Deflate | None) -> None:
    try:
        pending = await read_request(stream, limits=LIMITS)
        conn = await pending.accept(subprotocol=None, compression=compression)
    except HandshakeError as exc:
        logger.info("handshake refused: %s", exc)  # already answered (400/426/431) and closed
        return
    await echo(conn, direct=direct)


async def serve(
    host: str,
    port: int,
    *,
    direct: bool = False,
    compression: Deflate | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the echo on ``host``:``port``; report the bound port through ``task_status``.

    Args:
        host: The address to bind.
        port: The port to bind; 0 picks a free one.
        direct: Echo from inside the reader's sink instead of a writer task (`echo`).
        compression: Accept permessage-deflate offers with these settings (cases 12, 13).
        task_status: Receives the bound port once listening.
    """
    handler = partial(_handle, direct=direct, compression=compression)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, port, host=host))
        task_status.started(int(listeners[0].socket.getsockname()[1]))


async def _main(host: str, port: int, direct: bool, compression: Deflate | None) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(serve, host, port, direct=direct, compression=compression))
        print(f"listening on {host}:{bound}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.echo_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--direct-echo", action="store_true", help="echo from inside the reader's sink")
    parser.add_argument("--compression", action="store_true", help="accept permessage-deflate (Deflate())")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        trio.run(_main, args.host, args.port, args.direct_echo, Deflate() if args.compression else None)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
