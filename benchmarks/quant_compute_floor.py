"""The arithmetic cost of a step with memory traffic taken away: is the 8-bit step compute-bound?

Every "tensor" of one kernel call aliases the same small buffers (``--elements`` per tensor, in
L2 cache), so a call of ``--tensors`` tensors does the arithmetic of
``elements × tensors`` parameters without touching DRAM. One thread, thread CPU time,
the best of ``--repeats`` calls. The figures are projected to issue 3's workload A (20M
parameters) on the machine's cores, assuming perfect scaling, and set next to the memory
time of an fp32 step (28 bytes per parameter at the bandwidth ``adamkit bench`` measures).
The results of aliased calls are meaningless; only their time is used.

    .venv/bin/python benchmarks/quant_compute_floor.py [--elements 16384] [--tensors 1024] [--isa ISA ...]

``--isa`` times the kernels of each instruction set given (default: the best this CPU has).
"""

import argparse
import os
import time

import numpy as np

from adamkit import specs
from adamkit.compact import int8
from adamkit.kernels import native, quantized

WORKLOAD_A = 20_000_000
HYPER = {"lr": 1e-3, "weight_decay": 1e-2}


def best_cpu_seconds(call, repeats):
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        call()
        times.append(time.thread_time() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", type=int, default=16384)
    parser.add_argument("--tensors", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--isa", nargs="+", choices=native.available_isas(), default=native.available_isas()[:1])
    args = parser.parse_args()
    n, count = args.elements, args.tensors
    rng = np.random.default_rng(0)
    param = rng.standard_normal(n).astype(np.float32)
    grad = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.full(n, 1e-4, np.float32)
    codes = {
        **dict(zip(quantized.compact_keys("exp_avg"), int8.encode_signed(m))),
        **dict(zip(quantized.compact_keys("exp_avg_sq"), int8.encode_unsigned(v))),
    }
    numels, params, grads = [n] * count, [param.ctypes.data] * count, [grad.ctypes.data] * count
    steps = [10] * count

    def fp32_step(isa):
        state = {"exp_avg": [m.ctypes.data] * count, "exp_avg_sq": [v.ctypes.data] * count}
        native.update_pointers(specs.ADAMW, HYPER, "float32", numels, params, grads, state, steps, isa=isa, num_threads=1)

    def int8_step(isa):
        state = {key: [array.ctypes.data] * count for key, array in codes.items()}
        quantized.adam_pointers(
            {**HYPER, "decoupled_weight_decay": True}, numels, params, grads, state, steps, isa=isa, num_threads=1
        )

    cores = os.cpu_count()
    print(f"{n} elements × {count} aliased tensors per call, 1 thread, best of {args.repeats}; {cores} cores")
    print("| step | ISA | ns per parameter (1 core) | projected ms for 20M params on all cores |")
    print("|---|---|---|---|")
    for isa in args.isa:
        for label, step in (("fp32 AdamW kernel", fp32_step), ("int8 AdamW kernel", int8_step)):
            seconds = best_cpu_seconds(lambda: step(isa), args.repeats)
            per_param = seconds / (n * count)
            print(f"| {label} | {isa} | {per_param * 1e9:.3f} | {per_param * WORKLOAD_A / cores * 1e3:.1f} |")


if __name__ == "__main__":
    main()
