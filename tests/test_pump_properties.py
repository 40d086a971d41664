"""Properties of the pump, through a raw peer: every frame in its place, exactly once.

A raw WebSocket peer sends any interleaving of valid frames, hostile frames (each as one
WebSocket message, text or binary, possibly fragmented, with pings between fragments, and
cut into arbitrary TCP segments) while our side writes messages back. The codec is the
oracle: each frame must come out of the read channel as ``decode(frame)`` would have it (a
message, or one `MessageDecodeError`), in order, exactly once; every write must reach the
peer as one text frame holding ``encode(message)``; and the connection must still work.

Strategies: ``trio_mcp_ws.strategies`` (valid messages, hostile and policy-refused frames;
the codec is the oracle for both kinds). Example counts come from the Hypothesis
profile (``tests/_hypothesis_profiles.py``: ``ci`` by default, ``fuzz`` for ``nox -s fuzz``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import mcp_types as t
import trio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp.shared.message import SessionMessage

from trio_mcp_ws import ConnectionClosedError, MessageDecodeError, decode, encode
from trio_mcp_ws.strategies import hostile_frames, jsonrpc_messages, policy_refused_frames
from trio_mcp_ws.testing import RawPeer, open_raw_peer
from trio_mcp_ws.testing._raw import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, encode_frame

Role = Literal["client", "server"]
Frame = str | bytes  # text frame (str) or binary frame (bytes)

LIMIT = 30

PROPERTY_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- strategies -------------------------------------------------------------------------------


def _sendable(frame: Frame) -> Frame:
    """A text frame must be valid UTF-8 to be a frame at all; send the others as binary."""
    if isinstance(frame, str):
        try:
            frame.encode()
        except UnicodeEncodeError:
            return frame.encode("utf-8", "surrogatepass")
    return frame


def any_frames() -> st.SearchStrategy[Frame]:
    """Valid messages (as text or binary frames) and hostile and policy-refused frames, mixed."""
    valid = jsonrpc_messages().map(encode)
    refused = st.one_of(hostile_frames(), policy_refused_frames())
    return st.one_of(valid, valid.map(str.encode), refused.map(_sendable))


# -- the operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSends:
    """The peer sends one message frame, cut into fragments with optional pings between."""

    frame: Frame
    cuts: tuple[int, ...]
    pings: bool


@dataclass(frozen=True)
class WeWrite:
    message: t.JSONRPCMessage


Op = PeerSends | WeWrite


ANY_FRAMES = any_frames()  # built once: building the strategy is costly, drawing is not


@st.composite
def peer_sends(draw: st.DrawFn) -> PeerSends:
    frame = draw(ANY_FRAMES)
    size = len(frame.encode() if isinstance(frame, str) else frame)
    cuts = draw(st.lists(st.integers(0, size), max_size=3).map(lambda xs: tuple(sorted(set(xs)))))
    return PeerSends(frame, cuts, draw(st.booleans()))


OPS = st.lists(st.one_of(peer_sends(), jsonrpc_messages().map(WeWrite)), max_size=15)


def expected_item(frame: Frame) -> t.JSONRPCMessage | type[MessageDecodeError]:
    """The oracle: what the read channel must deliver for ``frame``."""
    try:
        return decode(frame)
    except MessageDecodeError:
        return MessageDecodeError


async def send_message_frame(peer: RawPeer, op: PeerSends, segment: int | None) -> None:
    """Send ``op`` as fragments (a ping between each if asked), in TCP segments of ``segment`` bytes."""
    payload = op.frame.encode() if isinstance(op.frame, str) else op.frame
    opcode = OP_TEXT if isinstance(op.frame, str) else OP_BINARY
    bounds = [0, *[cut for cut in op.cuts if 0 < cut < len(payload)], len(payload)]
    mask = b"\x01\x02\x03\x04" if peer.role == "client" else None
    data = b""
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        last = index == len(bounds) - 2
        data += encode_frame(
            opcode if index == 0 else OP_CONTINUATION, payload[start:end], fin=last, mask=mask
        )
        if op.pings and not last:
            data += encode_frame(OP_PING, b"between", mask=mask)
    # At most 256 segments, so a frame of megabytes is not sent a byte at a time.
    step = max(segment or len(data), -(-len(data) // 256), 1)
    for start in range(0, len(data), step):
        await peer.send_bytes(data[start : start + step])


SENTINEL = t.JSONRPCNotification(jsonrpc="2.0", method="test/sentinel")


async def run_program(ops: list[Op], raw_role: Role, segment: int | None) -> None:
    frames = [op for op in ops if isinstance(op, PeerSends)]
    writes = [op.message for op in ops if isinstance(op, WeWrite)]
    async with open_raw_peer(raw_role=raw_role) as peer:
        read, write = peer.endpoint.read, peer.endpoint.write
        received: list[SessionMessage | Exception] = []
        delivered: list[str | bytes | None] = []

        async def program() -> None:
            # The peer's frames and our writes interleave as the program says; each
            # direction ends with a sentinel, so a lost or extra item fails at once.
            for op in ops:
                if isinstance(op, PeerSends):
                    await send_message_frame(peer, op, segment)
                else:
                    await write.send(SessionMessage(op.message))
            await peer.send_text(encode(SENTINEL))
            await write.send(SessionMessage(SENTINEL))

        async def our_reader() -> None:
            while True:
                item = await read.receive()
                if isinstance(item, SessionMessage) and item.message == SENTINEL:
                    return
                received.append(item)

        async def peer_reader() -> None:
            while (message := await peer.receive_message()) != encode(SENTINEL):
                delivered.append(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(program)
            nursery.start_soon(our_reader)
            nursery.start_soon(peer_reader)

        outcomes = [type(item).__name__ for item in received]
        event(f"frames: {'some' if frames else 'none'} hostile: {'MessageDecodeError' in outcomes}")
        event(f"fragmented: {any(op.cuts for op in frames)}; writes: {bool(writes)}")
        event(f"cut into TCP segments: {segment is not None}")
        assert len(received) == len(frames), (outcomes, frames)
        for index, (op, item) in enumerate(zip(frames, received, strict=True)):
            wanted = expected_item(op.frame)
            if wanted is MessageDecodeError:
                assert isinstance(item, MessageDecodeError), (index, op, item)
            else:
                assert isinstance(item, SessionMessage), (index, op, item)
                assert item.message == wanted, (index, op, item)
        assert delivered == [encode(message) for message in writes]

        # Still usable, both ways, and it closes cleanly.
        probe = t.JSONRPCNotification(jsonrpc="2.0", method="probe")
        await peer.send_text(encode(probe))
        item = await read.receive()
        assert isinstance(item, SessionMessage)
        assert item.message == probe
        await write.send(SessionMessage(probe))
        assert await peer.receive_message() == encode(probe)
        await peer.endpoint.aclose()
        close = await peer.wait_closed()
        assert close is not None
        assert close.code == 1000


@PROPERTY_SETTINGS
@given(
    ops=OPS,
    raw_role=st.sampled_from(["server", "client"]),
    segment=st.none() | st.integers(1, 64),
)
async def test_property_pump_delivers_every_frame_in_its_place(
    ops: list[Op], raw_role: Role, segment: int | None
) -> None:
    with trio.fail_after(LIMIT):
        await run_program(ops, raw_role, segment)


@PROPERTY_SETTINGS
@given(frame=ANY_FRAMES, raw_role=st.sampled_from(["server", "client"]))
async def test_property_any_frame_then_a_close_ends_the_read_channel_cleanly(
    frame: Frame, raw_role: Role
) -> None:
    """Whatever came before, the peer's normal close ends the read channel with no error."""
    with trio.fail_after(LIMIT):
        async with open_raw_peer(raw_role=raw_role) as peer:
            if isinstance(frame, str):
                await peer.send_text(frame)
            else:
                await peer.send_binary(frame)
            await peer.send_close(1000)
            items = [item async for item in peer.endpoint.read]
    assert len(items) == 1
    assert not isinstance(items[0], ConnectionClosedError)
    wanted = expected_item(frame)
    if wanted is MessageDecodeError:
        assert isinstance(items[0], MessageDecodeError)
    else:
        assert isinstance(items[0], SessionMessage)
        assert items[0].message == wanted
