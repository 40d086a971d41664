"""The client side of every workload, written once over anyio so it runs on any stack.

A stack (ours, raw trio-websocket, raw ``websockets``, the SDK 1.30 transport) supplies
only how to connect and how to send and receive one prepared message; the timing loops
here are identical for all of them. anyio adds nothing per message: each send and receive
is the stack's own call, and anyio only structures the tasks around them (on Trio for the
Trio stacks, on asyncio for the others).

Every workload runs under ``anyio.fail_after(plan.budget)``: no loop here is unbounded in
time, and every loop is bounded in count by the plan.
"""

from __future__ import annotations

import abc
import sys
import time
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import anyio
import anyio.to_thread

from ._spec import (
    HOLDING,
    RESULT,
    WARM,
    CallsPlan,
    ConcurrencyPlan,
    EchoPlan,
    IdlePlan,
    Plan,
    Results,
    message_text,
    say,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

P = TypeVar("P")
P_contra = TypeVar("P_contra", contravariant=True)


class Link(Protocol[P_contra]):
    """One open connection, as the workloads see it."""

    async def send(self, payload: P_contra) -> None:
        """Send one prepared message."""
        ...

    async def receive(self) -> None:
        """Receive one message, raising if it is not an echo (an error value, a close)."""
        ...


class Stack(abc.ABC, Generic[P]):
    """A transport under test: its own message type ``P`` and how to connect."""

    @abc.abstractmethod
    def prepare(self, text: str) -> P:
        """Turn the JSON text of a message into what this stack sends (outside the timing)."""

    @abc.abstractmethod
    def connect(self, url: str) -> AbstractAsyncContextManager[Link[P]]:
        """Open one connection to ``url``; closing it is part of the context manager."""

    async def call_tools(self, url: str, plan: CallsPlan, results: Results) -> None:
        """Run ``plan.count`` sequential ``call_tool`` calls (MCP stacks only)."""
        raise NotImplementedError(f"{type(self).__name__} has no MCP client")

    def info(self) -> dict[str, str]:
        """Versions and settings worth recording next to the figures."""
        return {}


def run(stack: Stack[P], url: str, plan: Plan, *, backend: str) -> None:
    """Run ``plan`` against ``url`` on the anyio ``backend`` and print the ``RESULT`` line."""
    results = anyio.run(_run, stack, url, plan, backend=backend)
    results.info.update(stack.info())
    say(RESULT, results.to_json())


async def _run(stack: Stack[P], url: str, plan: Plan) -> Results:
    results = Results()
    with anyio.fail_after(plan.budget):
        if plan.echo is not None:
            await _echo(stack, url, plan.echo, results)
        if plan.concurrency is not None:
            await _concurrency(stack, url, plan.concurrency, results)
        if plan.idle is not None:
            await _idle(stack, url, plan.idle)
        if plan.calls is not None:
            await stack.call_tools(url, plan.calls, results)
    return results


async def stream(link: Link[P], payload: P, n: int) -> float:
    """Send ``n`` messages as fast as possible while reading the ``n`` echoes; the seconds taken."""

    async def sender() -> None:
        for _ in range(n):
            await link.send(payload)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender)
        for _ in range(n):
            await link.receive()
    return time.perf_counter() - start


async def round_trips(link: Link[P], payload: P, n: int) -> list[float]:
    """``n`` ping-pongs, one message in flight at a time; each round trip in microseconds."""
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await link.send(payload)
        await link.receive()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def _echo(stack: Stack[P], url: str, plan: EchoPlan, results: Results) -> None:
    async with stack.connect(url) as link:
        for size in plan.sizes:
            payload = stack.prepare(message_text(size))
            n = plan.stream_n[size]
            # Warm up allocators, caches and lazily imported code paths for this size.
            await stream(link, payload, max(1, min(plan.warmup, n // 5)))
            cpu = time.process_time()
            results.stream_seconds[size] = await stream(link, payload, n)
            results.stream_cpu_us[size] = (time.process_time() - cpu) / n * 1e6
            results.stream_n[size] = n
            results.rtt_us[size] = await round_trips(link, payload, plan.rtt_n[size])


class _Crowd:
    """Many connections opened with bounded parallelism (listen backlogs are finite).

    Two barriers: nobody starts before everyone is connected, and nobody closes before
    everyone is done, so neither connecting nor closing overlaps the measured phase.
    """

    def __init__(self, clients: int, parallel: int) -> None:
        self.clients = clients
        self.gate = anyio.Semaphore(parallel)
        self.connected = 0
        self.all_connected = anyio.Event()
        self.done = 0
        self.all_done = anyio.Event()

    async def join(self, stack: Stack[P], url: str, body: Callable[[Link[P]], Awaitable[None]]) -> None:
        """Connect (holding a gate slot only while connecting), wait for all, run ``body``, wait for all."""
        await self.gate.acquire()
        holding = True
        try:
            async with stack.connect(url) as link:
                self.gate.release()
                holding = False
                self.connected += 1
                if self.connected == self.clients:
                    self.all_connected.set()
                await self.all_connected.wait()
                await body(link)
                self.done += 1
                if self.done == self.clients:
                    self.all_done.set()
                await self.all_done.wait()
        finally:
            if holding:
                self.gate.release()


async def _concurrency(stack: Stack[P], url: str, plan: ConcurrencyPlan, results: Results) -> None:
    payload = stack.prepare(message_text(plan.size))
    crowd = _Crowd(plan.clients, plan.parallel_connects)
    finished: list[float] = []

    async def body(link: Link[P]) -> None:
        await stream(link, payload, plan.per_client)
        finished.append(time.perf_counter())

    begin = start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(plan.clients):
            tg.start_soon(crowd.join, stack, url, body)
        await crowd.all_connected.wait()
        start = time.perf_counter()
    if len(finished) != plan.clients:
        raise RuntimeError(f"only {len(finished)} of {plan.clients} clients finished streaming")
    results.connect_seconds = start - begin
    results.concurrency_seconds = max(finished) - start
    results.messages = plan.clients * plan.per_client


async def _idle(stack: Stack[P], url: str, plan: IdlePlan) -> None:
    payload = stack.prepare(message_text(150))
    async with stack.connect(url) as link:  # one warm-up connection, so lazy imports are done
        await link.send(payload)
        await link.receive()
    say(WARM)
    await _wait_for_orchestrator()
    crowd = _Crowd(plan.clients, plan.parallel_connects)
    release = anyio.Event()

    async def body(link: Link[P]) -> None:
        await release.wait()

    async with anyio.create_task_group() as tg:
        for _ in range(plan.clients):
            tg.start_soon(crowd.join, stack, url, body)
        await crowd.all_connected.wait()
        say(HOLDING)
        await _wait_for_orchestrator()
        release.set()


async def _wait_for_orchestrator() -> None:
    line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    if not line:
        raise RuntimeError("the orchestrator went away")


__all__ = ["RESULT", "Link", "Stack", "round_trips", "run", "stream"]
