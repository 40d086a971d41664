"""A Hypothesis state machine driving the pump against a model of what must be observed.

Rules are pure: each one updates the model and records a step that carries the model's
expectation at that point. Hypothesis cannot call async rules, and pytest-trio does not
run async state machines, so ``teardown`` runs the whole recorded program in one
``trio.run`` (autojump clock: a deadlock fails at once instead of hanging), checking every
step as it goes. A failure names the step; Hypothesis prints and shrinks the rules.

The model, over one connection between our endpoint and a raw peer:

- what our read channel must yield next (messages and decode errors in order; after the
  peer closes, the end, preceded by one `ConnectionClosedError` if the close was abnormal;
  after a drop, a prefix of what was pending then a 1006 error, as TCP may lose data);
- what the peer must receive: writes made while both sides are open arrive exactly, in
  order; writes made after the peer closed, or left buffered when our side is cancelled or
  the connection drops, may be lost but never reordered or duplicated;
- the close code the peer sees when our side leaves: 1000 clean, 1011 error, 1001 cancelled.

Cancelled receives and writes must consume or send nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import mcp_types as t
import trio
import trio.testing
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from mcp.shared.message import SessionMessage

from tests.test_pump_properties import ANY_FRAMES, Frame
from trio_mcp_ws import ConnectionClosedError, MessageDecodeError, decode, encode
from trio_mcp_ws._offload import INLINE_LIMIT
from trio_mcp_ws.strategies import jsonrpc_messages
from trio_mcp_ws.testing import open_raw_peer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from trio_mcp_ws import ReadChannel, WriteChannel
    from trio_mcp_ws.testing import RawPeer

Role = Literal["client", "server"]
Exit = Literal["clean", "error", "cancel"]

# Frames the peer may send ahead of our reads. The program is sequential, so the peer must
# never block on backpressure: our side absorbs a few complete messages of any size (the
# read channel's buffer, the connection's queue, the reader's own) before it stops reading
# the stream; six stays under that with room to spare (eight measured, pump of Nov 2026).
MAX_PENDING_READS = 6
# Virtual seconds: only a deadlock gets this far under the autojump clock (the longest
# legitimate wait is one close_timeout, 10 s).
DEADLINE = 3600
STEP_DEADLINE = 600

CLOSE_CODES = {"clean": 1000, "error": 1011, "cancel": 1001}

# Large frames may be decoded in a worker thread (see _offload), and the autojump clock would
# jump to the next deadline while a thread runs: frames over INLINE_LIMIT, the smallest size
# that may ever take that path, are left to tests/test_pump_properties.py (real clock).
MESSAGES = jsonrpc_messages()
SMALL_FRAMES = ANY_FRAMES.filter(lambda frame: len(frame) <= INLINE_LIMIT)


class Boom(Exception):
    pass


@dataclass(frozen=True)
class DecodeError:
    """Expect one `MessageDecodeError`."""


@dataclass(frozen=True)
class Closed:
    """Expect one `ConnectionClosedError` with this code."""

    code: int


Expected = t.JSONRPCMessage | DecodeError | Closed


@dataclass
class Context:
    """What the steps share while the program runs."""

    peer: RawPeer
    read: ReadChannel
    write: WriteChannel
    exit_with: trio.MemorySendChannel[Exit]
    exited: trio.Event


@dataclass(frozen=True)
class Step:
    description: str
    run: Callable[[Context], Awaitable[None]]


@dataclass
class Model:
    reads: list[Expected] = field(default_factory=list[Expected])
    tail: list[Expected] | None = None  # what follows ``reads`` once the peer is gone
    read_loss_allowed: bool = False  # a drop may lose what was pending
    peer_exact: list[str] = field(default_factory=list[str])
    peer_maybe: list[str] = field(default_factory=list[str])
    peer_gone: bool = False
    ours_exited: bool = False
    exit_code: int | None = None


def matches(item: SessionMessage | Exception, wanted: Expected) -> bool:
    if isinstance(wanted, DecodeError):
        return isinstance(item, MessageDecodeError)
    if isinstance(wanted, Closed):
        return isinstance(item, ConnectionClosedError) and item.code == wanted.code
    return isinstance(item, SessionMessage) and item.message == wanted


def expectation(frame: Frame) -> Expected:
    """The oracle: what the read channel must deliver for ``frame``."""
    try:
        return decode(frame)
    except MessageDecodeError:
        return DecodeError()


class PumpMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.role: Role = "server"
        self.model = Model()
        self.steps: list[Step] = []

    def record(self, description: str, run: Callable[[Context], Awaitable[None]]) -> None:
        self.steps.append(Step(description, run))

    @property
    def live(self) -> bool:
        return not self.model.peer_gone and not self.model.ours_exited

    # -- rules ----------------------------------------------------------------------------

    @initialize(role=st.sampled_from(["server", "client"]))
    def choose_role(self, role: Role) -> None:
        self.role = role

    @precondition(lambda self: self.live and len(self.model.reads) < MAX_PENDING_READS)
    @rule(frame=SMALL_FRAMES)
    def peer_sends(self, frame: Frame) -> None:
        self.model.reads.append(expectation(frame))

        async def run(ctx: Context) -> None:
            if isinstance(frame, str):
                await ctx.peer.send_text(frame)
            else:
                await ctx.peer.send_binary(frame)

        self.record(f"peer sends {frame!r}", run)

    @precondition(lambda self: self.live)
    @rule()
    def peer_pings(self) -> None:
        async def run(ctx: Context) -> None:
            await ctx.peer.send_ping(b"stateful")

        self.record("peer pings", run)

    @precondition(lambda self: self.live and bool(self.model.reads))
    @rule()
    def we_receive(self) -> None:
        wanted = self.model.reads.pop(0)

        async def run(ctx: Context) -> None:
            item = await ctx.read.receive()
            assert matches(item, wanted), f"received {item!r}, expected {wanted!r}"

        self.record(f"we receive {wanted!r}", run)

    @precondition(lambda self: self.live)
    @rule(before_blocking=st.booleans())
    def we_cancel_a_receive(self, before_blocking: bool) -> None:
        """A cancelled receive takes nothing: the next receive still gets the next item."""
        blocking = not self.model.reads and not before_blocking

        async def run(ctx: Context) -> None:
            if blocking:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ctx.read.receive)
                    await trio.testing.wait_all_tasks_blocked()
                    nursery.cancel_scope.cancel()
            else:
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await ctx.read.receive()
                assert scope.cancelled_caught

        self.record(f"we cancel a receive ({'while blocked' if blocking else 'before it starts'})", run)

    @precondition(lambda self: not self.model.ours_exited)
    @rule(message=MESSAGES)
    def we_write(self, message: t.JSONRPCMessage) -> None:
        text = encode(message)
        if self.model.peer_gone:
            self.model.peer_maybe.append(text)
        else:
            self.model.peer_exact.append(text)

        async def run(ctx: Context) -> None:
            await ctx.write.send(SessionMessage(message))  # never raises, even after a close

        self.record(f"we write {text}", run)

    @precondition(lambda self: not self.model.ours_exited)
    @rule(message=MESSAGES)
    def we_cancel_a_write(self, message: t.JSONRPCMessage) -> None:
        async def run(ctx: Context) -> None:
            with trio.CancelScope() as scope:
                scope.cancel()
                await ctx.write.send(SessionMessage(message))
            assert scope.cancelled_caught

        self.record("we cancel a write before it starts", run)

    @precondition(lambda self: self.live and bool(self.model.peer_exact))
    @rule()
    def peer_receives(self) -> None:
        wanted = self.model.peer_exact.pop(0)

        async def run(ctx: Context) -> None:
            received = await ctx.peer.receive_message()
            assert received == wanted, f"peer received {received!r}, expected {wanted!r}"

        self.record(f"peer receives {wanted}", run)

    @precondition(lambda self: self.live)
    @rule(code=st.sampled_from([1000, 1001, 3000, 4000, 1011]))
    def peer_closes(self, code: int) -> None:
        self.model.peer_gone = True
        self.model.tail = [] if code in (1000, 1001) else [Closed(code)]

        async def run(ctx: Context) -> None:
            await ctx.peer.send_close(code, "stateful")

        self.record(f"peer closes with {code}", run)

    @precondition(lambda self: self.live)
    @rule()
    def peer_drops(self) -> None:
        model = self.model
        model.peer_gone = True
        model.tail = [Closed(1006)]
        model.read_loss_allowed = True
        model.peer_maybe = model.peer_exact + model.peer_maybe
        model.peer_exact = []

        async def run(ctx: Context) -> None:
            await ctx.peer.drop()

        self.record("peer drops the connection", run)

    @precondition(
        lambda self: self.model.peer_gone and self.model.tail is not None and not self.model.ours_exited
    )
    @rule()
    def we_read_to_the_end(self) -> None:
        model = self.model
        pending, tail, lossy = list(model.reads), list(model.tail or []), model.read_loss_allowed
        model.reads, model.tail = [], None

        async def run(ctx: Context) -> None:
            items = [item async for item in ctx.read]
            body, rest = items[: len(items) - len(tail)], items[len(items) - len(tail) :]
            assert len(rest) == len(tail), f"read {items!r}, expected {pending!r} then {tail!r}"
            assert all(map(matches, rest, tail)), f"read {items!r}, expected {pending!r} then {tail!r}"
            if lossy:
                assert len(body) <= len(pending), f"read {items!r}, expected a prefix of {pending!r}"
            else:
                assert len(body) == len(pending), f"read {items!r}, expected {pending!r} then {tail!r}"
            assert all(map(matches, body, pending)), f"read {items!r}, expected {pending!r} then {tail!r}"

        self.record("we read to the end", run)

    @precondition(lambda self: not self.model.ours_exited)
    @rule(how=st.sampled_from(["clean", "error", "cancel"]))
    def we_exit(self, how: Exit) -> None:
        self.exit(how)

    @precondition(lambda self: self.model.ours_exited)
    @rule()
    def we_are_closed(self) -> None:
        """Once our side has left, it has finished closing: its tasks have ended."""

        async def run(ctx: Context) -> None:
            await trio.lowlevel.checkpoint()
            assert ctx.peer.endpoint.closed

        self.record("we are closed", run)

    def exit(self, how: Exit) -> None:
        model = self.model
        model.ours_exited = True
        if how == "cancel":
            # A cancelled exit does not flush: what was still buffered may be lost.
            model.peer_maybe = model.peer_exact + model.peer_maybe
            model.peer_exact = []
        if not model.peer_gone:
            model.exit_code = CLOSE_CODES[how]

        async def run(ctx: Context) -> None:
            await ctx.exit_with.send(how)
            await ctx.exited.wait()

        self.record(f"we exit ({how})", run)

    # -- running the program ----------------------------------------------------------

    def teardown(self) -> None:
        if not self.model.ours_exited:
            self.exit("clean")
        trio.run(self.execute, clock=trio.testing.MockClock(autojump_threshold=0))

    async def execute(self) -> None:
        model = self.model
        with trio.fail_after(DEADLINE):
            async with open_raw_peer(raw_role=self.role) as peer, trio.open_nursery() as nursery:
                exit_with, exit_requests = trio.open_memory_channel[Exit](1)
                exited = trio.Event()
                read, write = await nursery.start(hold_endpoint, peer, exit_requests, exited)
                ctx = Context(peer, read, write, exit_with, exited)
                for index, step in enumerate(self.steps):
                    event(" ".join(step.description.split()[:2]))
                    try:
                        with trio.fail_after(STEP_DEADLINE):
                            await step.run(ctx)
                    except trio.TooSlowError:
                        raise AssertionError(f"step {index} ({step.description}) never finished") from None
                    except AssertionError as exc:
                        raise AssertionError(f"step {index} ({step.description}): {exc}") from exc
                if not model.peer_gone:
                    # Every exact write arrives, then possibly some of the others, then our close.
                    received: list[str | bytes] = []
                    while (message := await peer.receive_message()) is not None:
                        received.append(message)
                    exact, maybe = model.peer_exact, model.peer_maybe
                    assert received[: len(exact)] == exact, f"peer received {received!r}, expected {exact!r}"
                    assert received[len(exact) :] == maybe[: len(received) - len(exact)], (
                        f"peer received {received!r}, expected {exact!r} then a prefix of {maybe!r}"
                    )
                    close = await peer.wait_closed()
                    assert close is not None, "our side closed TCP without a close frame"
                    assert close.code == model.exit_code, (
                        f"we closed with {close.code}, not {model.exit_code}"
                    )


async def hold_endpoint(
    peer: RawPeer,
    exit_requests: trio.MemoryReceiveChannel[Exit],
    exited: trio.Event,
    *,
    task_status: trio.TaskStatus[tuple[ReadChannel, WriteChannel]],
) -> None:
    """Keep our endpoint entered, as an application's ``async with`` does, until told how to leave."""
    try:
        with trio.CancelScope() as scope:
            try:
                async with peer.endpoint as channels:
                    task_status.started(channels)
                    how = await exit_requests.receive()
                    if how == "error":
                        raise Boom
                    if how == "cancel":
                        scope.cancel()
                        await trio.sleep_forever()
            except Boom:
                pass
    finally:
        exited.set()


TestStatefulPump = PumpMachine.TestCase
TestStatefulPump.settings = settings(
    # 20 steps reach every rule and most orders (close after pending frames, writes after a
    # close, cancel after a drop...); more mostly lengthens the sequences, and the time.
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
