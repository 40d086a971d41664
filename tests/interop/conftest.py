"""Fixtures for the interop suite.

Rules (on top of tests/conftest.py's): each peer runs as a subprocess in its own environment
on 127.0.0.1 with a port chosen by the OS; readiness is a line the peer prints, waited for
with a bound; no fixed sleeps; every peer is stopped by its process id in the ``peers``
fixture's teardown (terminate, then kill after a bound); a missing peer skips its tests with
a message saying what to install or run (or fails them under
``TRIO_MCP_WS_INTEROP_REQUIRE=1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tests.interop._support import NodeClient, PeerLauncher, mcp130_python, node_command

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def peers() -> AsyncIterator[PeerLauncher]:
    """Start peer processes; at teardown, stop each by pid and reap it."""
    async with trio.open_nursery() as nursery:
        launcher = PeerLauncher(nursery)
        try:
            yield launcher
        finally:
            await launcher.stop_all()
            nursery.cancel_scope.cancel()


# The peer checks are synchronous fixtures so a missing peer skips at setup, outside
# trio.run, where pytest keeps the skip message (inside a trio test it can be lost).


@pytest.fixture
def mcp130() -> Path:
    """The mcp 1.30 venv's interpreter (skips, naming the fix, when it is not installed)."""
    return mcp130_python()


@pytest.fixture(params=["builtin", "ws"])
def node_client(request: pytest.FixtureRequest) -> NodeClient:
    """The TypeScript client's command, once per WebSocket implementation (skips without Node)."""
    impl: str = request.param
    return NodeClient(impl, node_command(impl))
