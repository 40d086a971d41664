"""Hypothesis strategies for MCP JSON-RPC messages and hostile frames (work in progress)."""

from __future__ import annotations

__all__: list[str] = []


def _hypothesis_setup_hook() -> None:
    """Register type strategies with Hypothesis (filled in shortly)."""
