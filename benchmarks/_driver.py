"""The client side of every workload, written once over anyio, and the peer command line.

A stack says only how to prepare a message, how to connect (yielding a ``send`` and a
``receive``) and, for MCP stacks, how to open a session (yielding one ``call_tool``); the timing
loops here are the same for all of them. anyio adds nothing per message: each send and receive
is the stack's own call, and anyio only structures the tasks (on Trio for the Trio stacks, on
asyncio for the others). Standard library and anyio only, so the mcp 1.30 peers can use it.

Every workload runs under ``anyio.fail_after(plan.budget)`` and every loop is bounded in count.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import anyio
import anyio.to_thread

from ._spec import HOLDING, RESULT, WARM, Plan, Results, counts, payload, say

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

P = TypeVar("P")
# One open connection: send one prepared message; receive one (an exception value is a failure).
Link: TypeAlias = tuple[Callable[[P], Awaitable[object]], Callable[[], Awaitable[object]]]
# One MCP session: the protocol version it negotiated and one ``call_tool`` of the echo tool.
Session: TypeAlias = tuple[str, Callable[[], Awaitable[None]]]


@dataclass
class Stack(Generic[P]):
    """A transport under test, as the workloads see it."""

    prepare: Callable[[str], P]
    connect: Callable[[str], AbstractAsyncContextManager[Link[P]]]
    session: Callable[[str], AbstractAsyncContextManager[Session]] | None = None
    info: dict[str, str] = field(default_factory=dict[str, str])
    # Per payload text, figures a stack measures in-process (outside any timing).
    measure: Callable[[str], dict[str, float]] | None = None


async def _receive(receive: Callable[[], Awaitable[object]]) -> None:
    item = await receive()
    if isinstance(item, BaseException):
        raise RuntimeError(f"expected an echo, got {item!r}")


async def stream(link: Link[P], message: P, n: int) -> float:
    """Send ``n`` messages as fast as possible while reading the ``n`` echoes; the seconds taken."""
    send, receive = link

    async def sender() -> None:
        for _ in range(n):
            await send(message)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender)
        for _ in range(n):
            await _receive(receive)
    return time.perf_counter() - start


async def _echo(stack: Stack[P], url: str, plan: Plan, results: Results) -> None:
    async with stack.connect(url) as link:
        send, receive = link
        for name in plan.payloads:
            text = payload(name)
            if stack.measure is not None:
                results.extra[name] = stack.measure(text)
            message = stack.prepare(text)
            n, rtt_n = counts(name, smoke=plan.smoke)
            await stream(link, message, max(1, n // 5))  # warm caches and lazy code paths
            cpu = time.process_time()
            results.stream_seconds[name] = await stream(link, message, n)
            results.cpu_us[name] = (time.process_time() - cpu) / n * 1e6
            results.stream_n[name] = n
            samples = results.rtt_us[name] = []
            for _ in range(rtt_n):
                began = time.perf_counter()
                await send(message)
                await _receive(receive)
                samples.append((time.perf_counter() - began) * 1e6)


async def _calls(stack: Stack[Any], url: str, plan: Plan, results: Results) -> None:
    if stack.session is None:
        raise SystemExit("this stack has no MCP client")
    async with stack.session(url) as (protocol, call):
        results.info["protocol"] = protocol
        for _ in range(max(1, plan.calls // 20)):
            await call()
        start = time.perf_counter()
        for _ in range(plan.calls):
            began = time.perf_counter()
            await call()
            results.latency_us.append((time.perf_counter() - began) * 1e6)
        results.seconds = time.perf_counter() - start
        results.messages = plan.calls


async def _crowd(stack: Stack[P], url: str, plan: Plan, body: Callable[[Link[P]], Awaitable[None]]) -> None:
    """``plan.clients`` connections opened ``parallel_connects`` at a time, running ``body`` together.

    Two barriers: nobody starts ``body`` before everyone is connected and nobody closes before
    everyone is done, so neither connecting nor closing overlaps the measured phase.
    """
    gate = anyio.Semaphore(plan.parallel_connects)
    connected, done = anyio.Event(), anyio.Event()
    counters = [0, 0]

    async def one() -> None:
        await gate.acquire()
        holding = True
        try:
            async with stack.connect(url) as link:
                gate.release()
                holding = False
                counters[0] += 1
                if counters[0] == plan.clients:
                    connected.set()
                await connected.wait()
                await body(link)
                counters[1] += 1
                if counters[1] == plan.clients:
                    done.set()
                await done.wait()
        finally:
            if holding:
                gate.release()

    async with anyio.create_task_group() as tg:
        for _ in range(plan.clients):
            tg.start_soon(one)


async def _concurrency(stack: Stack[P], url: str, plan: Plan, results: Results) -> None:
    message = stack.prepare(payload(plan.payloads[0]))
    start = [0.0, 0.0]  # wall clock and CPU time when the first client starts streaming
    began = time.perf_counter()

    async def body(link: Link[P]) -> None:
        if not start[0]:
            start[:] = time.perf_counter(), time.process_time()
        await stream(link, message, plan.per_client)
        results.finish_seconds.append(time.perf_counter() - start[0])

    await _crowd(stack, url, plan, body)
    results.connect_seconds = start[0] - began
    results.seconds = max(results.finish_seconds)
    # CPU seconds over the measured phase and the close: far below ``seconds``, the client waited.
    results.cpu_seconds = time.process_time() - start[1]
    results.messages = plan.clients * plan.per_client


async def _idle(stack: Stack[P], url: str, plan: Plan, results: Results) -> None:
    async with stack.connect(url) as link:  # one warm-up connection, so lazy imports are done
        await stream(link, stack.prepare(payload(plan.payloads[0])), 1)
    say(WARM)
    await _wait_for_runner()
    release = anyio.Event()

    async def body(link: Link[P]) -> None:
        if not release.is_set() and not results.messages:  # the first connection to get here
            results.messages = plan.clients
            say(HOLDING)
            await _wait_for_runner()
            release.set()
        await release.wait()

    await _crowd(stack, url, plan, body)


async def _wait_for_runner() -> None:
    if not await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True):
        raise RuntimeError("the runner went away")


_WORKLOADS = {"echo": _echo, "calls": _calls, "concurrency": _concurrency, "idle": _idle}


async def _run(stack: Stack[Any], url: str, plan: Plan) -> Results:
    results = Results()
    with anyio.fail_after(plan.budget):
        await _WORKLOADS[plan.workload](stack, url, plan, results)
    results.info.update(stack.info)
    return results


def main(*, serve: Callable[[str], None], stacks: Callable[[str], Stack[Any]], backend: str) -> None:
    """A peer module's command line: ``serve KIND`` or ``drive STACK URL PLAN_JSON``.

    Args:
        serve: Runs the server ``KIND``; it prints ``READY <port>`` once listening and serves
            until terminated or `benchmarks._spec.LIFETIME` runs out.
        stacks: Builds the client stack ``STACK``.
        backend: The anyio backend this module's drivers run on.
    """
    # The SDK 1.30 transports are deprecated and say so on every call; that is not news here.
    warnings.simplefilter("ignore", DeprecationWarning)
    match sys.argv[1:]:
        case ["serve", kind]:
            serve(kind)
        case ["drive", name, url, plan]:
            results = anyio.run(_run, stacks(name), url, Plan.from_json(plan), backend=backend)
            say(RESULT, results.to_json())
        case _:
            raise SystemExit(f"usage: python -m {sys.argv[0]} serve KIND | drive STACK URL PLAN_JSON")
