"""The exception-group policy of our nurseries (trio_mcp_ws/_scope.py)."""

from __future__ import annotations

import sys

import pytest
import trio
import trio.testing

from trio_mcp_ws import TransportError
from trio_mcp_ws._scope import background_nursery

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


class Boom(Exception):
    pass


async def crash() -> None:
    raise Boom("background bug")


async def test_body_exception_is_not_wrapped() -> None:
    with pytest.raises(KeyError) as info:
        async with background_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise KeyError("body")
    assert type(info.value) is KeyError


async def test_background_tasks_end_with_the_body() -> None:
    async with background_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
    # reaching here means the sleeper was cancelled when the body ended


async def test_background_failure_becomes_one_transport_error(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TransportError) as info:
        async with background_nursery() as nursery:
            nursery.start_soon(crash)
            await trio.sleep_forever()
    assert not isinstance(info.value, BaseExceptionGroup)
    assert isinstance(info.value.__cause__, BaseExceptionGroup)
    assert "internal error" in caplog.text


async def test_body_exception_wins_over_background_failure() -> None:
    with pytest.raises(KeyError):
        async with background_nursery() as nursery:
            nursery.start_soon(crash)
            try:
                await trio.sleep_forever()
            finally:
                raise KeyError("body")  # the body fails while the task crashes


async def test_outside_cancellation_propagates(autojump_clock: trio.testing.MockClock) -> None:
    with trio.move_on_after(1) as scope:
        async with background_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.sleep_forever()
    assert scope.cancelled_caught
