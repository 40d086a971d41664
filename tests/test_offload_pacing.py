"""Large decodes take turns, one at a time, and leave the event loop a pause after each.

On the autojump clock with the body as a sleep: the pacing is about when turns start, not
about threads, so the schedule is checked exactly.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_mcp_ws._offload import LARGE_DECODE_SHARE, Pacer


async def test_turns_run_in_order_each_followed_by_an_equal_pause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(0.5)
    spans: list[tuple[str, float, float]] = []

    async def work(name: str, seconds: float) -> None:
        async with pacer.turn():
            start = trio.current_time()
            await trio.sleep(seconds)
            spans.append((name, start, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for name, seconds in (("a", 1.0), ("b", 2.0), ("c", 0.5)):
            nursery.start_soon(work, name, seconds)
            await trio.testing.wait_all_tasks_blocked()
    # a runs at once; b waits for a and a pause as long as a; c for b and two seconds more.
    assert spans == [("a", 0.0, 1.0), ("b", 2.0, 4.0), ("c", 6.0, 6.5)]


async def test_a_turn_after_a_long_idle_starts_at_once(autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(0.5)
    async with pacer.turn():
        await trio.sleep(1.0)
    await trio.sleep(10.0)
    start = trio.current_time()
    async with pacer.turn():
        assert trio.current_time() == start


async def test_a_cancelled_turn_still_ends_and_sets_its_pause(autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(0.25)  # a pause three times the turn
    with trio.move_on_after(1.0):
        async with pacer.turn():
            await trio.sleep(5.0)
    async with pacer.turn():
        assert trio.current_time() == 1.0 + 3.0


def test_the_share_is_checked() -> None:
    assert 0 < LARGE_DECODE_SHARE <= 1
    for share in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="share must be in"):
            Pacer(share)
    Pacer(1.0)  # no pause at all: turns only
