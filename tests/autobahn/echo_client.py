"""A raw WebSocket echo client on our driver, for ``wstest -m fuzzingserver``.

``python -m tests.autobahn.echo_client ws://127.0.0.1:<port>`` asks the fuzzing server how
many cases it has (``/getCaseCount``), connects once per case (``/runCase?case=N&agent=...``)
with our `WsConnection` (wsproto over a Trio TCP stream), runs `echo` until the server
closes, then asks it to write its reports (``/updateReports?agent=...``).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Final
from urllib.parse import urlsplit

import trio

from tests.autobahn._echo import LIMITS, MAX_MESSAGE_SIZE, echo
from tests.autobahn.cases import AGENT
from trio_mcp_ws import Deflate, HandshakeError
from trio_mcp_ws._wsconn import WsConnection

__all__ = ["CASE_TIMEOUT", "MAX_MESSAGE_SIZE", "connect", "main", "run_all"]

CASE_TIMEOUT: Final = 120.0
"""Seconds one case may take before the client gives up on it (the suite then reports it).
The slowest case (9.4.1, 4 MiB in 64-byte frames) takes a few seconds."""


async def connect(host: str, port: int, resource: str, *, compression: Deflate | None = None) -> WsConnection:
    """Open a TCP connection and run our client handshake for ``resource``.

    With ``compression``, permessage-deflate is offered (cases 12 and 13 accept it).

    Raises:
        HandshakeError: The server refused or broke the handshake.
        OSError: The TCP connection failed.
    """
    stream = await trio.open_tcp_stream(host, port)
    try:
        return await WsConnection.connect(
            stream,
            host=f"{host}:{port}",
            resource=resource,
            subprotocols=[],
            extra_headers=[],
            limits=LIMITS,
            compression=compression,
        )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise


async def _read_all(conn: WsConnection) -> list[str | bytes]:
    """Every message until the server closes (the suite's control endpoints do)."""
    messages: list[str | bytes] = []

    async def keep(message: str | bytes) -> None:
        messages.append(message)

    await conn.run_reader(keep)
    return messages


async def run_all(
    base: str, agent: str = AGENT, *, direct: bool = False, compression: Deflate | None = None
) -> int:
    """Run every case the fuzzing server at ``base`` (``ws://host:port``) offers, then report.

    Args:
        base: The fuzzing server's URL.
        agent: The name the cases are recorded under.
        direct: Echo from inside the reader's sink instead of a writer task (`echo`).
        compression: Offer permessage-deflate with these settings in every case.

    Returns:
        How many cases were run.

    Raises:
        ValueError: ``/getCaseCount`` did not answer with one number.
    """
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    with trio.fail_after(CASE_TIMEOUT):
        answer = await _read_all(await connect(host, port, "/getCaseCount"))
    if len(answer) != 1 or not isinstance(answer[0], str) or not answer[0].isdigit():
        raise ValueError(f"/getCaseCount answered {answer!r}")
    count = int(answer[0])
    for case in range(1, count + 1):
        with trio.move_on_after(CASE_TIMEOUT) as timeout:
            try:
                resource = f"/runCase?case={case}&agent={agent}"
                await echo(await connect(host, port, resource, compression=compression), direct=direct)
            except HandshakeError as exc:
                # The suite records the case as failed; the other cases still run.
                print(f"case {case}: handshake failed: {exc}", file=sys.stderr, flush=True)
        if timeout.cancelled_caught:
            print(f"case {case}: gave up after {CASE_TIMEOUT:.0f} s", file=sys.stderr, flush=True)
    with trio.fail_after(CASE_TIMEOUT):
        await _read_all(await connect(host, port, f"/updateReports?agent={agent}"))
    return count


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the cases."""
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.echo_client", description=__doc__)
    parser.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default=AGENT)
    parser.add_argument("--direct-echo", action="store_true", help="echo from inside the reader's sink")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate (Deflate())")
    args = parser.parse_args(argv)
    compression = Deflate() if args.compression else None
    count = trio.run(
        partial(run_all, args.url.rstrip("/"), args.agent, direct=args.direct_echo, compression=compression)
    )
    print(f"ran {count} cases as {args.agent}", flush=True)


if __name__ == "__main__":
    main()
