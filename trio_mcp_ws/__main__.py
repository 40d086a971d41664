"""``python -m trio_mcp_ws``: the same as the ``trio-mcp-ws`` command."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
