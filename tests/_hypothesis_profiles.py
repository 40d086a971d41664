"""Hypothesis profiles for the test suite: ``ci`` (the default) and ``fuzz`` (``nox -s fuzz``).

Imported by ``tests/conftest.py``, so every test module sees the same profile:

- ``ci``: fast enough for every run of the suite on every supported Python.
- ``fuzz``: tens of thousands of examples per property, bounded in time by that count
  (about 20 s per codec property on one core; ``nox -s fuzz`` prints the totals).

The profile named by the ``HYPOTHESIS_PROFILE`` environment variable is loaded, ``ci`` if
unset; pytest's ``--hypothesis-profile=NAME`` option, applied later by Hypothesis's pytest
plugin, overrides both.

Health checks: ``too_slow`` is suppressed because some strategies build large frames on
purpose (batches of thousands of messages, nesting 100,000 levels deep) and the pump
properties drive real WebSocket connections; ``data_too_large`` is left on. The deadline is
off: a shared CI machine makes per-example timing a source of flakiness, not information.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 150
FUZZ_EXAMPLES = 20_000

settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
