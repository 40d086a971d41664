"""Fixtures for the browser tests: a headless Chromium over DevTools, and the test page's server.

These tests run under ``nox -s browser`` (marker ``browser``). Without Chromium (or, for the
SDK page, without the bundle ``python -m tests.browser.build_bundle`` makes) they skip,
saying what to do; with ``TRIO_MCP_WS_BROWSER_REQUIRE=1`` (CI) either one missing fails.
"""

from __future__ import annotations

import gc
import os
from functools import partial
from typing import TYPE_CHECKING

import pytest

from tests.browser._cdp import DevTools, find_chromium, launch_chromium
from tests.browser._page_server import PageServer, serve_pages
from tests.browser.build_bundle import BUNDLE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    import trio


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (run by nox -s browser)")


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage when each test ends, so a resource it leaked fails that test, not a later one.

    Warnings are errors here: an unclosed socket or channel found by the collector becomes
    an unraisable-exception error in the test that owned it.
    """
    yield
    gc.collect()


@pytest.fixture
def chromium_executable() -> str:
    """The Chromium binary; skip (or, on CI, fail) when there is none."""
    found = find_chromium()
    if found is None:
        message = (
            "no Chromium: install Debian's chromium package (apt-get install chromium) "
            "or set TRIO_MCP_WS_CHROMIUM to a Chromium binary"
        )
        if os.environ.get("TRIO_MCP_WS_BROWSER_REQUIRE"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
async def devtools(chromium_executable: str, tmp_path: Path) -> AsyncIterator[DevTools]:
    """A fresh headless Chromium for this test; its stderr is kept in the test's tmp_path."""
    async with launch_chromium(chromium_executable, log=tmp_path / "chromium.log") as connection:
        yield connection


@pytest.fixture
async def pages(nursery: trio.Nursery) -> PageServer:
    """The test pages, served from one origin (with the SDK bundle, when it is built)."""
    server: PageServer = await nursery.start(partial(serve_pages, extra={"sdk-bundle.js": BUNDLE}))
    return server


@pytest.fixture
def sdk_bundle() -> Path:
    """The TypeScript SDK's bundled browser client; skip (or, on CI, fail) when it is not built."""
    if not BUNDLE.is_file():
        message = f"no SDK bundle at {BUNDLE}: run python -m tests.browser.build_bundle (needs Node.js 20+)"
        if os.environ.get("TRIO_MCP_WS_BROWSER_REQUIRE"):
            pytest.fail(message)
        pytest.skip(message)
    return BUNDLE


@pytest.fixture
async def other_pages(nursery: trio.Nursery) -> PageServer:
    """The same page from a second origin (another port), for the Origin allow-list tests."""
    server: PageServer = await nursery.start(serve_pages)
    return server
