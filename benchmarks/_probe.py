"""The well-behaved client beside an attack: JSON-RPC ``ping`` round trips, and their table cells.

A probe opens a fresh connection with `trio_mcp_ws.websocket_client` (for a ``serve_mcp``
server it first initializes the session), then sends ``ping`` requests one at a time for a
fixed time, `PROBE_GAP` seconds apart, and returns every round trip. It is bounded: the whole
probe fails after its duration plus `PROBE_SLACK` seconds.
"""

from __future__ import annotations

import time
from typing import Final

from benchmarks._rawws import INITIALIZE, INITIALIZED
from benchmarks._spec import percentile

# Pause between two probes: about 100 round trips a second on an idle server.
PROBE_GAP: Final = 0.005
# Seconds beyond its duration the probe may take (connecting, a server slowed by an attack).
PROBE_SLACK: Final = 60.0


def ping_round_trips(port: int, seconds: float, *, mcp: bool) -> list[float]:
    """Round trips of ``ping`` requests for ``seconds``, from a fresh connection (runs trio).

    With ``mcp``, the session is initialized first (a ``serve_mcp`` server wants that).

    Raises:
        RuntimeError: The connection failed during the probe.
        trio.TooSlowError: The probe took more than ``seconds`` + `PROBE_SLACK`.
    """
    import mcp_types as t
    import trio
    from mcp.shared.message import SessionMessage

    from trio_mcp_ws import websocket_client

    async def main() -> list[float]:
        times: list[float] = []
        with trio.fail_after(seconds + PROBE_SLACK):
            async with websocket_client(f"ws://127.0.0.1:{port}/mcp") as (read, write):
                if mcp:
                    await write.send(SessionMessage(t.jsonrpc_message_adapter.validate_json(INITIALIZE)))
                    await read.receive()
                    await write.send(SessionMessage(t.jsonrpc_message_adapter.validate_json(INITIALIZED)))
                deadline = trio.current_time() + seconds
                request_id = 1
                while trio.current_time() < deadline:
                    start = time.perf_counter()
                    await write.send(
                        SessionMessage(t.JSONRPCRequest(jsonrpc="2.0", id=request_id, method="ping"))
                    )
                    reply = await read.receive()
                    times.append(time.perf_counter() - start)
                    if not isinstance(reply, SessionMessage):
                        raise RuntimeError(f"the probe's connection failed: {reply!r}")
                    request_id += 1
                    await trio.sleep(PROBE_GAP)  # pacing, not synchronisation
        return times

    return trio.run(main)


def idle_median(port: int, seconds: float, *, mcp: bool) -> float:
    """The median round trip of a probe on an idle server: the baseline of a row."""
    return percentile(ping_round_trips(port, seconds, mcp=mcp), 0.5)


def worst(values: list[float]) -> float:
    """The largest value; NaN for no values (as `percentile`)."""
    return max(values) if values else float("nan")


def probe_cells(rtts: list[float], baseline: float) -> list[str]:
    """Cells: round trips, idle p50 ms, p50 ms, p99 ms, worst ms."""
    return [
        str(len(rtts)),
        f"{baseline * 1000:.1f}",
        f"{percentile(rtts, 0.5) * 1000:.1f}",
        f"{percentile(rtts, 0.99) * 1000:.1f}",
        f"{worst(rtts) * 1000:.0f}",
    ]
