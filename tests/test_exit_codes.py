"""The close code a transport sends for how its ``async with`` body ended."""

from __future__ import annotations

import sys

import pytest
import trio

from trio_mcp_ws._pump import exit_close_code

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


async def _cancelled() -> trio.Cancelled:
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            return exc
    raise AssertionError("not cancelled")  # pragma: no cover


async def test_plain_endings() -> None:
    assert exit_close_code(None) == 1000
    assert exit_close_code(await _cancelled()) == 1001
    assert exit_close_code(KeyboardInterrupt()) == 1001
    assert exit_close_code(ValueError("boom")) == 1011


async def test_a_cancelled_body_with_a_nursery_still_goes_away_with_1001() -> None:
    """Strict exception groups wrap a nursery's Cancelled: still a cancellation, not an error."""
    assert exit_close_code(BaseExceptionGroup("", [await _cancelled(), await _cancelled()])) == 1001


@pytest.mark.parametrize("inner", [ValueError("boom"), ExceptionGroup("", [ValueError("boom")])])
async def test_a_group_holding_an_error_is_an_internal_error(inner: Exception) -> None:
    assert exit_close_code(BaseExceptionGroup("", [await _cancelled(), inner])) == 1011
