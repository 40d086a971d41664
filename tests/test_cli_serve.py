"""``trio-mcp-ws serve`` as a deployed gateway: the real console script, real signals, real clients.

Rules: each test drives the installed ``trio-mcp-ws`` in a subprocess (in a session of its
own, so a signal to its process group is what a terminal's Ctrl-C sends), waits for its
"serving on" line, and reads close codes with a raw WebSocket client over loopback. External
processes are polled with bounds (`wait_gone`); nothing sleeps to synchronise.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import pytest
import trio

from tests.test_cli_peers import (
    RawClient,
    Rejected,
    child,
    raw_client,
    record_lines,
    request,
    run_gateway,
    wait_gone,
)

if TYPE_CHECKING:
    from pathlib import Path


def no_traceback(log: bytes) -> None:
    assert b"Traceback" not in log, log.decode(errors="replace")
    assert b"ExceptionGroup" not in log, log.decode(errors="replace")


async def round_trip(client: RawClient | Rejected, method: str = "ping", id_: int = 1) -> str | None:
    assert isinstance(client, RawClient), client
    await client.send_text(request(method, id_))
    return await client.next_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_closes_every_connection_with_1001_and_stops_the_children(
    signum: signal.Signals, tmp_path: Path
) -> None:
    record = tmp_path / "children"
    with trio.fail_after(30):
        # Every child appends to the same record file: two pids, then what reached each.
        async with run_gateway(command=child("--record", str(record), "echo")) as gateway:
            async with raw_client(gateway.url) as first, raw_client(gateway.url) as second:
                assert await round_trip(first) == request("ping")
                assert await round_trip(second, id_=2) == request("ping", 2)
                assert isinstance(first, RawClient)
                assert isinstance(second, RawClient)
                gateway.interrupt(signum)  # to the whole process group, as a terminal does
                assert await first.close_code() == 1001
                assert await second.close_code() == 1001
            assert await gateway.exit_status() == 128 + signum
            log = bytes(gateway.log)
    no_traceback(log)
    lines = record_lines(record)
    pids = [int(line) for line in lines if line.isdigit()]
    assert len(pids) == 2
    assert "SIGINT" not in lines  # the children run in their own session: Ctrl-C is the gateway's
    assert lines.count("exit") == 2  # both ended on their stdin closing, not on a signal
    for pid in pids:
        await wait_gone(pid)  # reaped, not orphaned
