"""What the step's safety checks cost: many small tensors, where the checks weigh most.

Times one step of ``adamkit.torch.Adam``, ``adamkit.numpy.Adam`` and ``torch.optim.Adam``'s
fused and for-loop paths on N tensors of M float32 elements (default 100 × 100), alternating
the contenders step by step, and prints the medians and each one's ratio to torch's fused step.
Run it once with ``PYTHONPATH`` pointing at a build of the code before a change and once after:
torch's fused step, timed in the same run, is the yardstick between the two runs.

    .venv/bin/python benchmarks/check_cost.py [--tensors 100] [--numel 100] [--steps 301] [--threads 1]

On a shared, busy machine give ``--threads 1``: with more, torch's intra-op threads wait on
scheduler time slices and its fused step's time says more about the load than about the step.
"""

import argparse
import statistics
import time

import numpy as np
import torch

import adamkit.kernels
import adamkit.numpy
import adamkit.torch


def _torch_contender(cls, count, numel, **options):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(numel, generator=generator)) for _ in range(count)]
    grads = [torch.randn(numel, generator=generator) for _ in range(count)]
    for param, grad in zip(params, grads):
        param.grad = grad
    optimizer = cls(params, lr=1e-3, **options)
    return optimizer.step


def _numpy_contender(count, numel):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(numel, dtype=np.float32) for _ in range(count)]
    grads = [rng.standard_normal(numel, dtype=np.float32) for _ in range(count)]
    optimizer = adamkit.numpy.Adam(params, lr=1e-3)
    return lambda: optimizer.step(grads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", type=int, default=100)
    parser.add_argument("--numel", type=int, default=100)
    parser.add_argument("--steps", type=int, default=301)
    parser.add_argument("--threads", type=int, default=None, help="torch's and adamkit's threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        adamkit.kernels.set_num_threads(args.threads)
    contenders = {
        "adamkit.torch.Adam": _torch_contender(adamkit.torch.Adam, args.tensors, args.numel),
        "adamkit.numpy.Adam": _numpy_contender(args.tensors, args.numel),
        "torch.optim.Adam fused": _torch_contender(torch.optim.Adam, args.tensors, args.numel, fused=True),
        "torch.optim.Adam for-loop": _torch_contender(
            torch.optim.Adam, args.tensors, args.numel, foreach=False
        ),
    }
    times = {name: [] for name in contenders}
    for round_index in range(args.steps + 5):
        for name, step in contenders.items():
            start = time.perf_counter()
            step()
            if round_index >= 5:  # the first rounds warm up and build the plans
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    fused = medians["torch.optim.Adam fused"]
    print(
        f"{args.tensors} tensors of {args.numel} float32 elements, median of {args.steps} alternating steps, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print("| contender | step | / torch fused |")
    print("|---|---|---|")
    for name, median in medians.items():
        print(f"| {name} | {median * 1e6:.0f} µs | {median / fused:.3f} |")


if __name__ == "__main__":
    main()
