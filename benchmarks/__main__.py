"""``python -m benchmarks [--smoke] [--out DIR]``: see `benchmarks.runner.main`."""

from __future__ import annotations

import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
