"""check_transport: our transport passes it, and it catches transports that break a promise.

The broken transports here are small wrappers around our own pair, each breaking exactly
one promise, the way real transports have (the MCP SDK's old WebSocket transport cancelled
its writer on exit and dropped the last messages).
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Literal, cast

import pytest
import trio
import trio.lowlevel
import trio.testing
from mcp.shared.message import SessionMessage

from trio_mcp_ws import MessageDecodeError
from trio_mcp_ws._scope import background_nursery
from trio_mcp_ws.testing import Endpoint, RawPeer, check_transport, open_raw_peer, open_transport_pair

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from trio_mcp_ws.testing._check import PairFactory, TransportLike

Role = Literal["client", "server"]
# What the deliberately broken transports below yield: plain Trio channels (check_transport
# takes anything with the channels' behaviour, not only our transports' channel types).
Channels = tuple[
    "trio.MemoryReceiveChannel[SessionMessage | Exception]", "trio.MemorySendChannel[SessionMessage]"
]

LIMIT = 60  # seconds for a whole check_transport run


# -- our own transport passes --------------------------------------------------------------


@pytest.mark.parametrize("raw_role", ["server", "client"])
async def test_our_transport_conforms(raw_role: Role) -> None:
    with trio.fail_after(LIMIT):
        await check_transport(open_transport_pair, make_raw_peer=partial(open_raw_peer, raw_role=raw_role))


async def test_our_transport_conforms_with_small_buffers_and_keepalive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    make_pair = partial(open_transport_pair, buffer_size=1024, ping_interval=1, ping_timeout=1)
    make_raw_peer = partial(open_raw_peer, buffer_size=1024, ping_interval=1, ping_timeout=1)
    with trio.fail_after(LIMIT):
        await check_transport(make_pair, make_raw_peer=make_raw_peer, messages=20)


# -- broken transports are caught ------------------------------------------------------------


@asynccontextmanager
async def relay(inner: Endpoint, *, buffer: float, flush: bool) -> AsyncGenerator[Channels, None]:
    """``inner`` behind a relay task and a buffer of ``buffer`` messages.

    With ``flush=False`` the relay is cancelled on exit, losing whatever it still holds.
    """
    send, receive = trio.open_memory_channel[SessionMessage](buffer)
    done = trio.Event()
    async with inner as (read, write), background_nursery() as nursery:

        async def forward() -> None:
            try:
                async with receive:
                    async for message in receive:
                        await write.send(message)
            finally:
                done.set()

        nursery.start_soon(forward)
        try:
            yield read, send
        finally:
            send.close()
            if flush:
                with trio.CancelScope(shield=True):
                    await done.wait()


def relayed(*, buffer: float = 0, flush: bool = True) -> PairFactory:
    @asynccontextmanager
    async def make_pair() -> AsyncGenerator[tuple[TransportLike, TransportLike], None]:
        async with open_transport_pair() as pair:
            yield (
                relay(pair.client, buffer=buffer, flush=flush),
                relay(pair.server, buffer=buffer, flush=flush),
            )

    return make_pair


async def test_a_relay_that_flushes_conforms() -> None:
    """The wrapper alone breaks nothing: the failures below come from what each one changes."""
    with trio.fail_after(LIMIT):
        await check_transport(relayed(buffer=8))


async def test_catches_messages_dropped_on_exit(autojump_clock: trio.testing.MockClock) -> None:
    with (
        trio.fail_after(LIMIT),
        pytest.raises(AssertionError, match=r"flush on exit.*expected message \d+ of 100"),
    ):
        await check_transport(relayed(buffer=100, flush=False))


async def test_catches_unbounded_buffering(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(LIMIT), pytest.raises(AssertionError, match=r"backpressure.*never blocked"):
        await check_transport(relayed(buffer=math.inf))


@asynccontextmanager
async def wrapping(inner: Endpoint) -> AsyncGenerator[Channels, None]:
    """A transport whose plain nursery wraps the body's exception in an ExceptionGroup."""
    async with inner as channels, trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        try:
            yield channels
        finally:
            nursery.cancel_scope.cancel()


async def test_catches_wrapped_body_exceptions() -> None:
    @asynccontextmanager
    async def make_pair() -> AsyncGenerator[tuple[TransportLike, TransportLike], None]:
        async with open_transport_pair() as pair:
            yield wrapping(pair.client), wrapping(pair.server)

    with trio.fail_after(LIMIT), pytest.raises(AssertionError, match=r"error exit.*wrapped in"):
        await check_transport(make_pair)


async def test_catches_swallowed_body_exceptions() -> None:
    @asynccontextmanager
    async def swallowing(inner: Endpoint) -> AsyncGenerator[Channels, None]:
        async with inner as channels:
            try:
                yield channels
            except Exception:  # the defect under test
                pass

    @asynccontextmanager
    async def make_pair() -> AsyncGenerator[tuple[TransportLike, TransportLike], None]:
        async with open_transport_pair() as pair:
            yield swallowing(pair.client), swallowing(pair.server)

    with trio.fail_after(LIMIT), pytest.raises(AssertionError, match=r"error exit.*swallowed"):
        await check_transport(make_pair)


async def test_catches_a_task_left_running() -> None:
    @asynccontextmanager
    async def make_pair() -> AsyncGenerator[tuple[TransportLike, TransportLike], None]:
        async with open_transport_pair() as pair:
            yield pair
        trio.lowlevel.spawn_system_task(trio.sleep_forever)

    with trio.fail_after(LIMIT), pytest.raises(AssertionError, match=r"ordering: 1 task\(s\) still running"):
        await check_transport(make_pair)


async def test_catches_trio_errors_on_write_after_the_peer_closed() -> None:
    """Plain memory channels, as the SDK's in-memory transport: a late write raises."""

    @asynccontextmanager
    async def side(
        read: trio.MemoryReceiveChannel[SessionMessage], write: trio.MemorySendChannel[SessionMessage]
    ) -> AsyncGenerator[
        tuple[trio.MemoryReceiveChannel[SessionMessage], trio.MemorySendChannel[SessionMessage]]
    ]:
        async with read, write:
            yield read, write

    @asynccontextmanager
    async def make_pair() -> AsyncGenerator[tuple[TransportLike, TransportLike], None]:
        to_server, from_client = trio.open_memory_channel[SessionMessage](0)
        to_client, from_server = trio.open_memory_channel[SessionMessage](0)
        await trio.lowlevel.checkpoint()
        yield side(from_server, to_server), side(from_client, to_client)

    with (
        trio.fail_after(LIMIT),
        pytest.raises(AssertionError, match=r"ordering: server: writing after .* raised BrokenResourceError"),
    ):
        await check_transport(make_pair)


async def test_catches_a_transport_that_hides_bad_frames() -> None:
    @asynccontextmanager
    async def hiding(inner: Endpoint) -> AsyncGenerator[Channels, None]:
        send, receive = trio.open_memory_channel[SessionMessage | Exception](0)
        async with inner as (read, write), background_nursery() as nursery:

            async def filter_errors() -> None:
                async with send:
                    async for item in read:
                        if not isinstance(item, MessageDecodeError):
                            await send.send(item)

            nursery.start_soon(filter_errors)
            yield receive, write

    @asynccontextmanager
    async def make_raw_peer() -> AsyncGenerator[RawPeer, None]:
        async with open_raw_peer() as peer:
            peer.endpoint = cast("Endpoint", hiding(peer.endpoint))
            yield peer

    with trio.fail_after(LIMIT), pytest.raises(AssertionError, match=r"bad frames: expected one exception"):
        await check_transport(open_transport_pair, make_raw_peer=make_raw_peer)


async def test_a_hang_names_the_scenario_and_its_progress(autojump_clock: trio.testing.MockClock) -> None:
    """A transport that never delivers the last message: the check times out, saying where."""

    @asynccontextmanager
    async def holding_back(inner: Endpoint) -> AsyncGenerator[Channels, None]:
        send, receive = trio.open_memory_channel[SessionMessage](math.inf)
        async with inner as (read, write), background_nursery() as nursery:

            async def forward_all_but_the_last() -> None:
                held: SessionMessage | None = None
                async for message in receive:
                    if held is not None:
                        await write.send(held)
                    held = message

            nursery.start_soon(forward_all_but_the_last)
            yield read, send

    @asynccontextmanager
    async def make_pair() -> AsyncGenerator[tuple[TransportLike, TransportLike], None]:
        async with open_transport_pair() as pair:
            yield holding_back(pair.client), holding_back(pair.server)

    with (
        trio.fail_after(LIMIT),
        pytest.raises(AssertionError, match=r"ordering: did not finish within 5 s \(.*received: 99"),
    ):
        await check_transport(make_pair, scenario_timeout=5)
