"""Where the time of a lazy sparse Adam step goes, phase by phase, with cold caches.

``adamkit.torch.Adam(eps_hat=True)`` steps a 1,000,000 × 64 float32 table on fresh gradients
of 10,000 rows (coalesced, or as an embedding's backward makes them: 20,000 lookups, shuffled,
with repeats); before each step 64 MiB are streamed through the caches, as the rest of a
training step would. Each phase is timed by wrapping the function that runs it, in the
thread's CPU time (the wall time of a step on a busy machine also holds other processes'
time slices); the table gives medians over the steps, the first two (the full, validating
step, then the first planned one) left out:

- ``p.grad = grad``: torch's gradient setter;
- ``plan checks``: :meth:`SparsePlan.gradient_pointers`, which re-reads the group, the state
  and the gradient, and checks the indices' range in one pass from C;
- ``step counters``: advancing the ``step`` tensors;
- ``C kernel``: ``ak_sparse_update`` (checks, sort when not in order, sums, steps);
- ``the rest``: the whole step minus the phases above (hyperparameter checks, the step
  wrapper, argument conversion).

Run with ``.venv/bin/python benchmarks/sparse_phases.py [--steps N]``; prints a Markdown table.
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch

import adamkit.torch
from adamkit.kernels import native
from adamkit.torch import _cached_sparse_plan, _step_counters

ROWS, DIM, TOUCHED = 1_000_000, 64, 10_000
FLUSH_BYTES = 64 << 20


def gradients(kind, count, generator):
    """``count`` fresh gradients of ``kind`` (``coalesced`` or ``embedding``)."""
    result = []
    for _ in range(count):
        rows = torch.randperm(ROWS, generator=generator)[:TOUCHED]
        if kind == "coalesced":
            rows = rows.sort().values
            values = torch.randn(TOUCHED, DIM, generator=generator)
            result.append(torch.sparse_coo_tensor(rows[None], values, (ROWS, DIM), is_coalesced=True, check_invariants=False))
            continue
        lookups = torch.cat([rows, rows[torch.randint(TOUCHED, (TOUCHED,), generator=generator)]])
        lookups = lookups[torch.randperm(len(lookups), generator=generator)]
        weight = torch.empty(ROWS, DIM, requires_grad=True)
        upstream = torch.randn(len(lookups), DIM, generator=generator)
        (torch.nn.functional.embedding(lookups, weight, sparse=True) * upstream).sum().backward()
        result.append(weight.grad)
    return result


class PhaseTimer:
    """Wraps functions so that each call adds its thread CPU time to a phase."""

    def __init__(self):
        self.times = {}
        self._undo = []

    def wrap(self, owner, name, phase):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.thread_time_ns()
            try:
                return original(*args, **kwargs)
            finally:
                self.times.setdefault(phase, []).append((time.thread_time_ns() - start) / 1e3)

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self):
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


class TimedKernel:
    """The native module, with ``sparse_update`` timed."""

    def __init__(self, module, timer):
        self._module, self._timer = module, timer

    def sparse_update(self, *args):
        start = time.thread_time_ns()
        try:
            return self._module.sparse_update(*args)
        finally:
            self._timer.times.setdefault("C kernel", []).append((time.thread_time_ns() - start) / 1e3)

    def __getattr__(self, name):
        return getattr(self._module, name)


def run(kind, steps):
    generator = torch.Generator().manual_seed(0)
    param = torch.nn.Parameter(torch.randn(ROWS, DIM, generator=generator))
    optimizer = adamkit.torch.Adam([param], eps_hat=True)
    grads = gradients(kind, steps + 2, generator)
    flush = np.ones(FLUSH_BYTES, dtype=np.uint8)
    timer = PhaseTimer()
    timer.wrap(_cached_sparse_plan.SparsePlan, "gradient_pointers", "plan checks")
    timer.wrap(_step_counters.PackedSteps, "advance", "step counters")
    module = native._native
    native._native = TimedKernel(module, timer)
    setting, totals, walls = [], [], []
    try:
        for index, grad in enumerate(grads):
            flush[::64] += 1
            wall, start = time.perf_counter(), time.thread_time_ns()
            param.grad = grad
            set_at = time.thread_time_ns()
            optimizer.step()
            end = time.thread_time_ns()
            if index >= 2:
                setting.append((set_at - start) / 1e3)
                totals.append((end - start) / 1e3)
                walls.append((time.perf_counter() - wall) * 1e6)
    finally:
        native._native = module
        timer.restore()
    phases = {"p.grad = grad": setting}
    phases.update({phase: timer.times[phase][-steps:] for phase in ("plan checks", "step counters", "C kernel")})
    rest = [total - sum(values[i] for values in phases.values()) for i, total in enumerate(totals)]
    phases["the rest"] = rest
    return phases, totals, walls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {kind: run(kind, args.steps) for kind in ("coalesced", "embedding")}
    print(f"Medians of {args.steps} steps, µs of thread CPU time; load average {os.getloadavg()[0]:.1f}\n")
    print("| phase | coalesced | embedding backward |\n|---|---|---|")
    phases = results["coalesced"][0]
    for phase in phases:
        cells = [f"{statistics.median(results[kind][0][phase]):.0f}" for kind in results]
        print(f"| {phase} | {' | '.join(cells)} |")
    print(f"| **step, CPU** | {' | '.join(f'{statistics.median(results[k][1]):.0f}' for k in results)} |")
    print(f"| **step, wall** | {' | '.join(f'{statistics.median(results[k][2]):.0f}' for k in results)} |")


if __name__ == "__main__":
    main()
