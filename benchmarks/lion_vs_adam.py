"""Lion's step time over Adam's on workload A (20M float32 parameters in 50 tensors), both
adamkit.torch on the C kernels, stepped in alternation; the medians of 11 steps after 2.

Issue 17's target is Lion at most 0.8x Adam: Lion moves 20 bytes per parameter, Adam 28.
`adamkit bench` does not time Lion (its spec's variant has bench=False), so this script does.

    .venv/bin/python benchmarks/lion_vs_adam.py
"""

import statistics
import time

import torch

import adamkit.torch

WARMUP, STEPS, TENSORS, NUMEL = 2, 11, 50, 400_000


def optimizer(cls):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(NUMEL, generator=generator)) for _ in range(TENSORS)]
    for param in params:
        param.grad = torch.randn(NUMEL, generator=generator) * 1e-3
    return cls(params, lr=1e-4)


def main():
    torch.set_num_threads(2)
    optimizers = {"Adam": optimizer(adamkit.torch.Adam), "Lion": optimizer(adamkit.torch.Lion)}
    times = {name: [] for name in optimizers}
    for round_ in range(WARMUP + STEPS):
        for name, opt in optimizers.items():
            start = time.perf_counter()
            opt.step()
            if round_ >= WARMUP:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name}: {median:.2f} ms")
    print(f"Lion / Adam: {medians['Lion'] / medians['Adam']:.3f}")


if __name__ == "__main__":
    main()
