"""The benchmark suite: our transport side by side with its baselines, in one run.

``python -m benchmarks`` (or ``nox -s bench``) runs every workload for every case, then every
standalone ``benchmarks/case_*.py``, prints the report and writes ``benchmarks/results/latest.md``
and ``latest.json`` (the plots go to ``docs/img``); ``--smoke`` is the quick check CI runs. See
docs/performance.md. Layers: `_spec` (payloads, plan, results) <- `_driver` (workloads) <- the
``stack_*`` peers; `_summary` <- `report` <- `runner`, which starts the peers via `_process`.
"""
