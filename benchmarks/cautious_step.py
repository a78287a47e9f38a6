"""The step time of ``cautious=True`` over the plain step on workload A (20M float32 parameters in
50 tensors), AdamW, Lion and AdEMAMix on adamkit.torch's C kernels, each pair stepped in
alternation; the medians of 11 steps after 2.

The traffic model (adamkit.benchmarking.traffic.step_elements) says how much slower it can be at
the memory bound: the first of csrc/cautious.c's two passes reads the parameter, the gradient and
the state once more (AdamW 44 bytes per parameter instead of 28, Lion 32 instead of 20,
AdEMAMix 56 instead of 36). `adamkit bench` times torch.optim's rules, which have no such option.

    .venv/bin/python benchmarks/cautious_step.py
"""

import statistics
import time

import torch

import adamkit.torch
from adamkit.benchmarking.traffic import step_elements

WARMUP, STEPS, TENSORS, NUMEL = 2, 11, 50, 400_000
NAMES = ("AdamW", "Lion", "AdEMAMix")


def optimizer(name, cautious):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(NUMEL, generator=generator)) for _ in range(TENSORS)]
    for param in params:
        param.grad = torch.randn(NUMEL, generator=generator) * 1e-3
    return getattr(adamkit.torch, name)(params, lr=1e-4, cautious=cautious)


def main():
    torch.set_num_threads(2)
    for name in NAMES:
        optimizers = {cautious: optimizer(name, cautious) for cautious in (False, True)}
        times = {cautious: [] for cautious in optimizers}
        for round_ in range(WARMUP + STEPS):
            for cautious, opt in optimizers.items():
                start = time.perf_counter()
                opt.step()
                if round_ >= WARMUP:
                    times[cautious].append(time.perf_counter() - start)
        plain, cautious = (statistics.median(times[flag]) * 1e3 for flag in (False, True))
        model = step_elements(name, {"cautious": True}) / step_elements(name, {})
        print(
            f"{name}: plain {plain:.2f} ms, cautious {cautious:.2f} ms, ratio {cautious / plain:.3f} (bytes {model:.3f})"
        )


if __name__ == "__main__":
    main()
