"""The benchmark suite: our transport side by side with its baselines, in one run.

``python -m benchmarks`` (or ``nox -s bench``) runs every workload for every case, prints a
markdown table and writes ``benchmarks/results/latest.md``, ``latest.json`` and PNG plots;
``python -m benchmarks --smoke`` is the few-seconds check CI uses. See docs/performance.md.

This package imports nothing beyond the standard library at import time: the mcp 1.30 peers
run in their own environment (``.bench/mcp130``), which has neither trio nor trio-mcp-ws.
"""
