"""A raw WebSocket echo client for ``wstest -m fuzzingserver``: ``python -m tests.autobahn.echo_client``.

Asks the fuzzing server how many cases it has (``/getCaseCount``), connects once per case
(``/runCase?case=N&agent=...``) echoing every message back as it arrived until the server
closes, then asks it to write its reports (``/updateReports?agent=...``).
"""

from __future__ import annotations

import argparse
from typing import Final

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.autobahn.cases import AGENT

__all__ = ["CASE_TIMEOUT", "MAX_MESSAGE_SIZE", "echo_case", "main", "run_all"]

MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
"""Above the suite's largest message (16 MiB in cases 9.1.6 and 9.2.6)."""

CASE_TIMEOUT: Final = 120.0
"""Seconds one case may take before the client gives up on it (the suite then marks it)."""


async def _get_text(url: str) -> str:
    async with open_websocket_url(url) as ws:
        message = await ws.get_message()
    if not isinstance(message, str):
        raise TypeError(f"{url} answered with a binary message")
    return message


async def echo_case(url: str) -> None:
    """Connect to ``url`` and echo every message until the connection closes."""
    async with open_websocket_url(url, max_message_size=MAX_MESSAGE_SIZE) as ws:
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass


async def run_all(base: str, agent: str = AGENT) -> int:
    """Run every case the fuzzing server at ``base`` offers, then update its reports.

    Returns:
        How many cases were run.
    """
    count = int(await _get_text(f"{base}/getCaseCount"))
    for case in range(1, count + 1):
        with trio.move_on_after(CASE_TIMEOUT):
            await echo_case(f"{base}/runCase?case={case}&agent={agent}")
    async with open_websocket_url(f"{base}/updateReports?agent={agent}"):
        pass
    return count


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the cases."""
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.echo_client", description=__doc__)
    parser.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default=AGENT)
    args = parser.parse_args(argv)
    count = trio.run(run_all, args.url.rstrip("/"), args.agent)
    print(f"ran {count} cases as {args.agent}", flush=True)


if __name__ == "__main__":
    main()
