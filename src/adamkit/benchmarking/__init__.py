"""The machinery behind ``adamkit bench``: workloads, contenders, round-robin timing, reports.

A run times, for each workload and rule, adamkit against torch.optim's for-loop, foreach and
fused paths, alternating them step by step, next to a STREAM-style measurement of memory
bandwidth taken in the same rounds. :func:`adamkit.benchmarking.runner.run_benchmark` returns
a JSON-ready record; :mod:`adamkit.benchmarking.report` renders it.
"""
