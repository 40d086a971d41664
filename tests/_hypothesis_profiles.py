"""Hypothesis profiles for the test suite: ``ci`` (the default) and ``fuzz`` (``nox -s fuzz``).

Imported by ``tests/conftest.py``, so every test module sees the same profile:

- ``ci``: fast enough for every run of the suite on every supported Python.
- ``fuzz``: 20,000 examples per property (``FUZZ_EXAMPLES`` overrides), which bounds its
  time; ``nox -s fuzz`` prints the totals (``tests/fuzz_report.py``).

The profile named by the ``HYPOTHESIS_PROFILE`` environment variable is loaded, ``ci`` if
unset; pytest's ``--hypothesis-profile=NAME`` option, applied later by Hypothesis's pytest
plugin, overrides both.

Health checks: ``too_slow`` is suppressed because some strategies build large frames on
purpose (batches of thousands of messages, nesting 30,000 levels deep) and the pump
properties drive real WebSocket connections; ``data_too_large`` is left on. The deadline is
off: a shared CI machine makes per-example timing a source of flakiness, not information.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 150
# FUZZ_EXAMPLES=2000 nox -s fuzz  for a shorter run (the fuzz profile's only time bound).
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20000"))

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
