"""Shared test configuration.

Rules for every test here (after trio-websocket's own test suite): loopback only
(127.0.0.1, port 0), a hard ``trio.fail_after`` on every test that does I/O, the autojump
clock for anything timed, no sleeps as synchronisation.
"""

from __future__ import annotations

import tests._hypothesis_profiles  # noqa: F401  # pyright: ignore[reportUnusedImport]  # registers and loads the ci/fuzz profiles
