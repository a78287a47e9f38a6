"""``adamkit bench --distributed``: the optimizer step under DDP, ``ZeroRedundancyOptimizer`` and
FSDP2 on ``WORLD_SIZE`` CPU processes (gloo on loopback), adamkit.torch against torch.optim.

For each wrapper and rule, every contender (adamkit.torch; torch.optim's for-loop and foreach
paths where torch.optim has the rule; adamkit.torch with 8-bit state where the rule takes it)
trains its own copy of an MLP of ``depth`` square layers of ``width``, wrapped alike, and steps
in alternating rounds (:mod:`adamkit.benchmarking.distributed_worker`). The record holds each
contender's step times (the slower rank's), their median, the fastest torch.optim path's median
over adamkit's, and the bytes of optimizer state on each rank.
"""

import json
import os
import tempfile
import time
import uuid

import torch.multiprocessing as mp

from adamkit import specs
from adamkit.benchmarking import contenders, distributed_worker, rule_cases, runner

WORLD_SIZE = 2
WRAPPERS = ("DDP", "ZeRO", "FSDP2")
TIMEOUT_SECONDS = 3600

CASES = (
    rule_cases.CASES
    + tuple(
        rule_cases.RuleCase(spec.variants[0].label, spec.name, spec.variants[0].settings)
        for spec in specs.ALL
        if spec.variants and not any(variant.bench for variant in spec.variants)
    )
    + tuple(
        rule_cases.RuleCase(f"{spec.name}-cautious", spec.name, {**spec.variants[0].settings, "cautious": True})
        for spec in specs.ALL
        if "cautious" in spec.defaults and spec.variants
    )
)
"""What ``adamkit bench`` times (:data:`adamkit.benchmarking.rule_cases.CASES`), the first
variant of each rule none of whose variants it times (Adafactor), and ``cautious=True`` of
each rule that takes it, whose whole-tensor count FSDP2 sums over the processes."""
BY_NAME = {case.name: case for case in CASES}
NAMES = tuple(BY_NAME)


def run_distributed(settings, *, progress=None):
    """Time every wrapper × rule of ``settings`` (:class:`~adamkit.benchmarking.settings.DistributedSettings`)
    on ``WORLD_SIZE`` processes; return the JSON-ready record."""
    report = progress or (lambda message: None)
    record = runner.start_record(
        settings,
        {
            "world_size": WORLD_SIZE,
            "backend": "gloo",
            "threads": {"requested": 1, "torch": 1, "adamkit": 1},
            "wrappers": list(settings.wrappers),
            "rules": list(settings.rules),
            "width": settings.width,
            "depth": settings.depth,
            "n_params": settings.n_params,
            "steps": settings.steps,
            "warmup": settings.warmup,
            "quick": settings.quick,
        },
    )
    record["kind"] = "distributed"
    report(
        f"timing {', '.join(settings.wrappers)} on {WORLD_SIZE} gloo processes: "
        f"{len(settings.rules)} rule(s), {settings.n_params:,} parameters"
    )
    record["results"] = [_summarized(row) for row in _spawned(settings)]
    return runner.finish_record(record)


def _spawned(settings):
    """The rows rank 0 wrote, after running the workers; hung workers are killed."""
    directory = tempfile.mkdtemp(prefix="adamkit-distributed-")
    rendezvous = os.path.join(directory, f"rendezvous-{uuid.uuid4().hex}")
    path = os.path.join(directory, "rows.json")
    context = mp.start_processes(
        distributed_worker.worker,
        args=(WORLD_SIZE, rendezvous, settings, path),
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        while not context.join(timeout=1.0):  # raises if a worker failed
            if time.monotonic() > deadline:
                raise TimeoutError(f"the distributed benchmark did not finish within {TIMEOUT_SECONDS} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    with open(path) as file:
        rows = json.load(file)
    for name in (path, rendezvous):
        if os.path.exists(name):
            os.remove(name)
    os.rmdir(directory)
    return rows


def _summarized(row):
    """``row`` with the fastest torch.optim path and the ratios of medians."""
    entries = row["contenders"]
    torch_paths = [label for label in distributed_worker.TORCH_PATHS if label in entries]
    torch_best = min(torch_paths, key=lambda label: entries[label]["median_ms"], default=None)
    return {
        **row,
        "torch_best": torch_best,
        "speedup_vs_torch_best": _ratio(entries, torch_best, contenders.ADAMKIT_TORCH),
        "int8_time_vs_adamkit": _ratio(entries, contenders.ADAMKIT_INT8, contenders.ADAMKIT_TORCH),
    }


def _ratio(entries, baseline, contender):
    """``baseline``'s median time over ``contender``'s: above 1 means ``contender`` is faster."""
    if baseline not in entries or contender not in entries:
        return None
    return entries[baseline]["median_ms"] / entries[contender]["median_ms"]


def is_distributed(record):
    """Whether ``record`` is an ``adamkit bench --distributed`` record."""
    return record.get("kind") == "distributed"
