"""`check_transport`: a conformance check for MCP transport pairs.

In the spirit of `trio.testing.check_two_way_stream`: the check knows nothing of how the
transport works, only what a session built on it must be able to rely on, and it fails
with an `AssertionError` naming the first broken promise. It uses no timing: blocking is
observed with `trio.testing.wait_all_tasks_blocked`, leaks by counting tasks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

import mcp_types
import trio
import trio.testing
from mcp.shared.message import SessionMessage

from .._codec import encode

if sys.version_info < (3, 11):  # pragma: no cover - exercised by the 3.10 CI job
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ._raw import RawPeer

__all__ = ["ReadLike", "TransportLike", "WriteLike", "check_transport"]


class ReadLike(Protocol):
    """What the check needs of a read channel: async iteration, ending with the connection."""

    def __aiter__(self) -> AsyncIterator[SessionMessage | Exception]: ...


class WriteLike(Protocol):
    """What the check needs of a write channel."""

    async def send(self, item: SessionMessage, /) -> None: ...


TransportLike: TypeAlias = AbstractAsyncContextManager[tuple[ReadLike, WriteLike]]
"""An MCP transport: an async context manager yielding ``(read, write)``."""

PairFactory: TypeAlias = Callable[[], AbstractAsyncContextManager[tuple[TransportLike, TransportLike]]]
"""Opens a connected ``(client, server)`` pair of transports."""

RawPeerFactory: TypeAlias = Callable[[], AbstractAsyncContextManager["RawPeer"]]
"""Opens a `RawPeer` whose ``endpoint`` is the transport under test."""

# Backpressure: the sender must block before this much is buffered for a peer that reads
# nothing. Generous (a socket, a few queues), but finite.
_BLOCK_MESSAGE_SIZE: Final = 16 * 1024
_BLOCK_LIMIT: Final = 256  # messages, i.e. 4 MiB

_END: Final = object()


class _Probe(Exception):
    """The exception the check raises in a transport's body, to see it come out unchanged."""


def _message(origin: str, seq: int, *, pad: int = 0) -> SessionMessage:
    params: dict[str, object] = {"from": origin, "seq": seq}
    if pad:
        params["pad"] = "x" * pad
    return SessionMessage(mcp_types.JSONRPCNotification(jsonrpc="2.0", method="check/seq", params=params))


def _describe(item: object) -> str:
    if item is _END:
        return "the end of the read channel"
    if isinstance(item, SessionMessage):
        return f"message {encode(item.message)[:120]}"
    return f"exception {item!r}"


class _Reader:
    """One read channel, item by item, with the end as a value."""

    def __init__(self, read: ReadLike, name: str) -> None:
        self._items = aiter(read)
        self.name = name
        self.received = 0

    async def next(self) -> object:
        try:
            item = await anext(self._items)
        except StopAsyncIteration:
            return _END
        self.received += 1
        return item

    async def expect(self, expected: SessionMessage, what: str) -> None:
        item = await self.next()
        if not isinstance(item, SessionMessage) or item.message != expected.message:
            raise AssertionError(
                f"{self.name}: expected {what} ({_describe(expected)}), got {_describe(item)}"
            )

    async def expect_end(self, *, allow_error: bool, what: str) -> None:
        """The channel must end, after at most one exception if ``allow_error``."""
        item = await self.next()
        if allow_error and isinstance(item, Exception):
            item = await self.next()
        if item is not _END:
            raise AssertionError(
                f"{self.name}: expected the read channel to end {what}, got {_describe(item)}"
            )


class _Progress:
    """What the scenario was doing, for the message when it hangs."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def note(self, key: str, text: str) -> None:
        self.notes[key] = text

    def __str__(self) -> str:
        return "; ".join(f"{key}: {text}" for key, text in self.notes.items()) or "no progress"


def _count_tasks() -> int:
    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None  # we are running in trio
    return count(root)


@asynccontextmanager
async def _scenario(name: str, limit: float) -> AsyncGenerator[_Progress, None]:
    """Run one scenario: bounded in time, failures named, and no task left behind."""
    await trio.testing.wait_all_tasks_blocked()
    before = _count_tasks()
    progress = _Progress()
    try:
        with trio.fail_after(limit):
            yield progress
    except trio.TooSlowError:
        raise AssertionError(
            f"check_transport: {name}: did not finish within {limit} s ({progress})"
        ) from None
    except AssertionError as exc:
        raise AssertionError(f"check_transport: {name}: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"check_transport: {name}: the transport raised {exc!r}") from exc
    await trio.testing.wait_all_tasks_blocked()
    after = _count_tasks()
    if after > before:
        raise AssertionError(
            f"check_transport: {name}: {after - before} task(s) still running after the pair closed"
        )


async def _together(*jobs: Callable[[], Awaitable[None]]) -> None:
    """Run jobs concurrently; the first failure cancels the rest and is raised as itself."""
    failures: list[BaseException] = []

    async def guard(job: Callable[[], Awaitable[None]], scope: trio.CancelScope) -> None:
        try:
            await job()
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(guard, job, nursery.cancel_scope)
    if failures:
        raise failures[0]


async def check_transport(
    make_pair: PairFactory,
    *,
    make_raw_peer: RawPeerFactory | None = None,
    messages: int = 100,
    scenario_timeout: float = 10.0,
) -> None:
    """Check that a transport pair keeps the promises an MCP session relies on.

    ``make_pair()`` must return an async context manager that connects a client and a
    server and yields them as a ``(client, server)`` tuple of *transports*: async context
    managers yielding ``(read, write)``, as ``mcp.Client`` takes. The check enters each side
    in a task of its own, uses it, and leaves it, in many orders. `open_transport_pair` is
    such a factory:

    ```python
    await check_transport(open_transport_pair)
    await check_transport(partial(open_transport_pair, max_message_size=2**16))
    ```

    Checked, each on a fresh pair, both directions:

    - **ordering**: ``messages`` messages each way, sent and received concurrently,
      arrive in order, exactly once; nothing else arrives.
    - **flush on exit**: a side that sends and leaves its ``async with`` at once has
      everything delivered before the peer's read channel ends.
    - **clean close**: a side's clean exit ends the peer's read channel with no
      exception, and the peer may still write afterwards without an error.
    - **error exit**: an exception raised in a side's body leaves its ``async with``
      as itself (not in an ExceptionGroup); the peer's read channel ends, after at most
      one exception value.
    - **backpressure**: a peer that reads nothing makes the sender block (observed with
      `trio.testing.wait_all_tasks_blocked`) before 4 MiB are buffered; once it reads,
      everything arrives, in order.
    - **cancellation**: cancelling a side's body, or the whole pair, ends it promptly;
      the peer's read channel ends.
    - **no leaks**: after each pair closes, no task it started is still running.

    With ``make_raw_peer`` (a factory like `open_raw_peer`, whose ``peer.endpoint`` is the
    transport under test), also over WebSocket frames:

    - **bad frames**: invalid JSON, valid JSON that is no JSON-RPC message, a batch, and
      invalid UTF-8 in a binary frame each arrive as one exception value in their place,
      and the next good frame (text or binary) is still delivered; what the transport
      sends is one text frame per message.
    - **invalid UTF-8 in a text frame** fails the connection: close code 1007, one
      exception on the read channel, and the TCP connection closed promptly.
    - **close codes**: the peer's normal close (1000) ends the read channel with no
      exception and is answered; an abnormal one (4000) or a dropped connection puts one
      exception on the read channel (with the peer's code as ``code`` if it has one),
      then it ends; a clean exit closes with 1000, an error exit with a code that is
      neither 1000 nor 1001, a cancelled one with 1000 or 1001.

    Run it with nothing else going on in the Trio run: it counts tasks.

    Args:
        make_pair: Opens a connected pair, as above. Called once per scenario.
        make_raw_peer: Opens a `RawPeer` facing the transport under test; ``None`` skips
            the frame-level checks.
        messages: How many messages the ordering and flush checks send each way.
        scenario_timeout: Seconds each scenario may take (on the current clock; with the
            autojump clock a hang fails at once instead of after this long).

    Raises:
        AssertionError: On the first violation, with a message naming the scenario, the
            side, and what was expected and seen.
    """
    await _check_ordering(make_pair, messages, scenario_timeout)
    for sender in ("client", "server"):
        await _check_flush_on_exit(make_pair, sender, messages, scenario_timeout)
        await _check_error_exit(make_pair, sender, scenario_timeout)
        await _check_backpressure(make_pair, sender, scenario_timeout)
        await _check_cancelled_side(make_pair, sender, scenario_timeout)
    await _check_cancelled_pair(make_pair, scenario_timeout)
    if make_raw_peer is not None:
        await _check_bad_frames(make_raw_peer, scenario_timeout)
        await _check_invalid_utf8(make_raw_peer, scenario_timeout)
        await _check_peer_closes(make_raw_peer, scenario_timeout)
        await _check_exit_codes(make_raw_peer, scenario_timeout)


def _sides(pair: tuple[TransportLike, TransportLike], first: str) -> tuple[TransportLike, TransportLike]:
    client, server = pair
    return (client, server) if first == "client" else (server, client)


def _other(name: str) -> str:
    return "server" if name == "client" else "client"


async def _check_ordering(make_pair: PairFactory, count: int, limit: float) -> None:
    async with _scenario("ordering", limit) as progress, make_pair() as (client, server):
        exchanged = [trio.Event(), trio.Event()]

        async def side(transport: TransportLike, name: str, index: int) -> None:
            peer = _other(name)
            async with transport as (read, write):
                reader = _Reader(read, f"{name} reading what the {peer} sent")

                async def send() -> None:
                    for seq in range(count):
                        await write.send(_message(name, seq))
                        progress.note(f"{name} sent", str(seq + 1))

                async def receive() -> None:
                    for seq in range(count):
                        await reader.expect(_message(peer, seq), f"message {seq} of {count}")
                        progress.note(f"{name} received", str(seq + 1))

                await _together(send, receive)
                exchanged[index].set()
                await exchanged[1 - index].wait()
                if name == "server":
                    # The client leaves cleanly now: nothing more may arrive, and no error.
                    await reader.expect_end(allow_error=False, what="after the client's clean exit")
                    progress.note("server", "saw the end")
                    try:
                        await write.send(_message(name, count))
                    except Exception as exc:
                        raise AssertionError(
                            f"server: writing after the client's clean close raised {exc!r}"
                        ) from exc

        await _together(lambda: side(client, "client", 0), lambda: side(server, "server", 1))


async def _check_flush_on_exit(make_pair: PairFactory, sender: str, count: int, limit: float) -> None:
    receiver = _other(sender)
    name = f"flush on exit ({sender} sends {count} messages and leaves at once)"
    async with _scenario(name, limit) as progress, make_pair() as pair:
        sending, receiving = _sides(pair, sender)

        async def send() -> None:
            async with sending as (_read, write):
                for seq in range(count):
                    await write.send(_message(sender, seq))
            progress.note(sender, "left")

        async def receive() -> None:
            async with receiving as (read, _write):
                reader = _Reader(read, f"{receiver} reading what the {sender} sent")
                for seq in range(count):
                    await reader.expect(_message(sender, seq), f"message {seq} of {count}")
                    progress.note(f"{receiver} received", str(seq + 1))
                await reader.expect_end(allow_error=False, what=f"after the {sender}'s clean exit")

        await _together(send, receive)


async def _check_error_exit(make_pair: PairFactory, failing: str, limit: float) -> None:
    peer = _other(failing)
    async with _scenario(f"error exit ({failing}'s body raises)", limit), make_pair() as pair:
        raising, surviving = _sides(pair, failing)

        async def fail() -> None:
            try:
                async with raising as (_read, _write):
                    raise _Probe("raised by check_transport")
            except _Probe:
                return
            except BaseExceptionGroup as group:
                raise AssertionError(
                    f"{failing}: the body's exception came out wrapped in {group!r}"
                ) from group
            raise AssertionError(f"{failing}: the body's exception was swallowed by the transport")

        async def watch() -> None:
            async with surviving as (read, _write):
                reader = _Reader(read, f"{peer} reading after the {failing} failed")
                await reader.expect_end(allow_error=True, what=f"when the {failing}'s body raised")

        await _together(fail, watch)


async def _check_backpressure(make_pair: PairFactory, sender: str, limit: float) -> None:
    receiver = _other(sender)
    name = f"backpressure ({sender} sends, {receiver} does not read)"
    async with _scenario(name, limit) as progress, make_pair() as pair:
        sending, receiving = _sides(pair, sender)
        accepted = 0
        blocked = trio.Event()
        resume = trio.Event()

        async def send() -> None:
            nonlocal accepted
            async with sending as (_read, write):
                for seq in range(_BLOCK_LIMIT):
                    await write.send(_message(sender, seq, pad=_BLOCK_MESSAGE_SIZE))
                    accepted += 1
                    progress.note(f"{sender} sent", str(accepted))
                await resume.wait()

        async def receive() -> None:
            async with receiving as (read, _write):
                await blocked.wait()
                reader = _Reader(read, f"{receiver} reading what the {sender} sent")
                for seq in range(_BLOCK_LIMIT):
                    await reader.expect(_message(sender, seq, pad=_BLOCK_MESSAGE_SIZE), f"message {seq}")
                    progress.note(f"{receiver} received", str(seq + 1))
                resume.set()
                await reader.expect_end(allow_error=False, what=f"after the {sender}'s clean exit")

        async def observe() -> None:
            await trio.testing.wait_all_tasks_blocked()
            if accepted >= _BLOCK_LIMIT:
                size = _BLOCK_LIMIT * _BLOCK_MESSAGE_SIZE // 2**20
                raise AssertionError(
                    f"{sender}: sent {accepted} messages ({size} MiB) to a {receiver} that reads "
                    "nothing and never blocked: the transport buffers without bound"
                )
            progress.note("blocked after", f"{accepted} messages")
            blocked.set()

        await _together(send, receive, observe)


async def _check_cancelled_side(make_pair: PairFactory, cancelled: str, limit: float) -> None:
    peer = _other(cancelled)
    async with _scenario(f"cancellation ({cancelled}'s body is cancelled)", limit), make_pair() as pair:
        victim, surviving = _sides(pair, cancelled)
        entered = trio.Event()

        async def cancel_me() -> None:
            with trio.CancelScope() as scope:
                async with victim as (read, _write):
                    entered.set()
                    scope.cancel()
                    await _Reader(read, cancelled).next()
            if not scope.cancelled_caught:
                raise AssertionError(f"{cancelled}: the transport swallowed the cancellation")

        async def watch() -> None:
            async with surviving as (read, _write):
                reader = _Reader(read, f"{peer} reading after the {cancelled} was cancelled")
                await entered.wait()
                await reader.expect_end(allow_error=True, what=f"when the {cancelled} was cancelled")

        await _together(cancel_me, watch)


async def _check_cancelled_pair(make_pair: PairFactory, limit: float) -> None:
    async with _scenario("cancellation (the whole pair is cancelled)", limit):
        with trio.CancelScope() as scope:
            async with make_pair() as (client, server):

                async def wait(transport: TransportLike) -> None:
                    async with transport as (read, _write):
                        await _Reader(read, "waiting").next()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(wait, client)
                    nursery.start_soon(wait, server)
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()
        if not scope.cancelled_caught:
            raise AssertionError("the pair swallowed the cancellation")


# -- frame-level checks, through a raw peer ---------------------------------------------


@asynccontextmanager
async def _facing_raw_peer(
    name: str, make_raw_peer: RawPeerFactory, limit: float
) -> AsyncGenerator[tuple[RawPeer, _Progress, ReadLike, WriteLike], None]:
    """A scenario with the transport under test entered, facing a raw peer."""
    async with _scenario(name, limit) as progress, make_raw_peer() as peer, peer.endpoint as (read, write):
        yield peer, progress, read, write


async def _check_bad_frames(make_raw_peer: RawPeerFactory, limit: float) -> None:
    good = [_message("peer", seq) for seq in range(4)]
    frames: list[tuple[str, str | bytes, SessionMessage | None]] = [
        ("text", encode(good[0].message), good[0]),
        ("text", "this is not JSON", None),
        ("binary", encode(good[1].message).encode(), good[1]),
        ("text", '{"jsonrpc": "2.0", "method": 42}', None),
        ("text", '[{"jsonrpc": "2.0", "method": "batch"}]', None),
        ("binary", b'{"jsonrpc": "2.0", "method": "\xff"}', None),
        ("text", encode(good[2].message), good[2]),
        ("text", "", None),
        ("text", encode(good[3].message), good[3]),
    ]
    async with _facing_raw_peer("bad frames", make_raw_peer, limit) as (peer, progress, read, write):

        async def send() -> None:
            for index, (kind, payload, _expected) in enumerate(frames):
                if isinstance(payload, bytes) and kind == "binary":
                    await peer.send_binary(payload)
                else:
                    await peer.send_text(payload)
                progress.note("frames sent", str(index + 1))

        async def receive() -> None:
            reader = _Reader(read, "reading what the raw peer sent")
            for index, (kind, payload, expected) in enumerate(frames):
                if expected is not None:
                    await reader.expect(expected, f"the good {kind} frame {index}")
                    continue
                item = await reader.next()
                if not isinstance(item, Exception):
                    raise AssertionError(
                        f"expected one exception for the bad {kind} frame {index} ({payload!r}), "
                        f"got {_describe(item)}"
                    )

        await _together(send, receive)
        reply = _message("transport", 0)
        await write.send(reply)
        received = await peer.receive_message()
        if not isinstance(received, str):
            raise AssertionError(f"expected one text frame from the transport, got {received!r}")
        wanted = reply.message.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if json.loads(received) != wanted:
            raise AssertionError(f"the transport sent {received!r} for {wanted!r}")


async def _check_invalid_utf8(make_raw_peer: RawPeerFactory, limit: float) -> None:
    name = "invalid UTF-8 in a text frame"
    async with _facing_raw_peer(name, make_raw_peer, limit) as (peer, _progress, read, _write):
        await peer.send_text(b'{"jsonrpc": "2.0", "method": "\xc3\x28"}')
        reader = _Reader(read, "reading after invalid UTF-8")
        item = await reader.next()
        if not isinstance(item, Exception):
            raise AssertionError(f"expected one exception (a 1007 close), got {_describe(item)}")
        await reader.expect_end(allow_error=False, what="after the 1007 close")
        close = await peer.wait_closed()
        if close is None or close.code != 1007:
            raise AssertionError(f"expected a close frame with 1007, got {close!r}")
        await peer.wait_eof()


async def _check_peer_closes(make_raw_peer: RawPeerFactory, limit: float) -> None:
    name = "the peer closes normally (1000)"
    async with _facing_raw_peer(name, make_raw_peer, limit) as (peer, _progress, read, _write):
        await peer.send_close(1000, "done")
        reader = _Reader(read, "reading after the peer's 1000")
        await reader.expect_end(allow_error=False, what="after the peer's normal close")
        if await peer.wait_closed() is None:
            raise AssertionError("the transport did not answer the peer's close frame")

    name = "the peer closes abnormally (4000)"
    async with _facing_raw_peer(name, make_raw_peer, limit) as (peer, _progress, read, _write):
        await peer.send_close(4000, "check_transport")
        await _expect_one_error(_Reader(read, "reading after the peer's 4000"), 4000)

    name = "the peer drops the connection"
    async with _facing_raw_peer(name, make_raw_peer, limit) as (peer, _progress, read, _write):
        await peer.drop()
        await _expect_one_error(_Reader(read, "reading after the peer dropped TCP"), 1006)


async def _expect_one_error(reader: _Reader, code: int) -> None:
    item = await reader.next()
    if not isinstance(item, Exception):
        raise AssertionError(f"{reader.name}: expected one exception, got {_describe(item)}")
    seen = getattr(item, "code", code)
    if seen != code:
        raise AssertionError(f"{reader.name}: expected code {code}, got {seen!r} in {item!r}")
    await reader.expect_end(allow_error=False, what="after the exception")


async def _check_exit_codes(make_raw_peer: RawPeerFactory, limit: float) -> None:
    async with _scenario("close code of a clean exit", limit), make_raw_peer() as peer:
        async with peer.endpoint:
            pass
        await _expect_close(peer, {1000}, "a clean exit")

    async with _scenario("close code of an error exit", limit), make_raw_peer() as peer:
        try:
            async with peer.endpoint:
                raise _Probe
        except _Probe:
            pass
        close = await peer.wait_closed()
        if close is None or close.code in (1000, 1001):
            raise AssertionError(f"an error exit must not close as normal, but sent {close!r}")

    async with _scenario("close code of a cancelled exit", limit), make_raw_peer() as peer:
        with trio.CancelScope() as scope:
            async with peer.endpoint:
                scope.cancel()
                await trio.sleep_forever()
        await _expect_close(peer, {1000, 1001}, "a cancelled exit")


async def _expect_close(peer: RawPeer, codes: set[int], what: str) -> None:
    close = await peer.wait_closed()
    if close is None or close.code not in codes:
        raise AssertionError(f"{what} must close with {sorted(codes)}, but sent {close!r}")
