"""The cost of ``step_in_backward=True`` against the usual backward-then-step, for AdamW on the C
kernels: one iteration (zero_grad, loss, backward, and step unless the step ran in backward)
on 100 small tensors (1,000 elements each) and on 20M parameters (50 tensors of 400,000).

The three loops run in alternation (backward alone; backward then step; backward stepping in
its hooks), so that the machine's load weighs on each alike; the figures are medians. The
step's cost is an iteration's time minus that of the backward alone.

    .venv/bin/python benchmarks/in_backward.py
"""

import statistics
import time

import torch

import adamkit.torch

WARMUP, ROUNDS = 3, 21
MODELS = {"100 small tensors": (100, 1_000), "20M parameters": (50, 400_000)}


def _model(tensors, numel):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(numel, generator=generator)) for _ in range(tensors)]
    weights = [torch.randn(numel, generator=generator) * 1e-3 for _ in range(tensors)]
    return params, weights


def _iteration(params, weights, optimizer):
    if optimizer is not None:
        optimizer.zero_grad()
    else:
        for param in params:
            param.grad = None
    loss = sum(torch.dot(param, weight) for param, weight in zip(params, weights))
    loss.backward()
    if optimizer is not None:
        optimizer.step()


def main():
    torch.set_num_threads(2)
    for label, (tensors, numel) in MODELS.items():
        runs = {}
        for name, in_backward in (("backward alone", None), ("step after", False), ("step in backward", True)):
            params, weights = _model(tensors, numel)
            optimizer = (
                None if in_backward is None else adamkit.torch.AdamW(params, lr=1e-4, step_in_backward=in_backward)
            )
            runs[name] = (params, weights, optimizer, [])
        for round_ in range(WARMUP + ROUNDS):
            for params, weights, optimizer, times in runs.values():
                start = time.perf_counter()
                _iteration(params, weights, optimizer)
                if round_ >= WARMUP:
                    times.append(time.perf_counter() - start)
        median = {name: statistics.median(run[3]) for name, run in runs.items()}
        step_after = median["step after"] - median["backward alone"]
        step_in = median["step in backward"] - median["backward alone"]
        print(
            f"{label}: backward alone {median['backward alone'] * 1e3:.3f} ms, "
            f"with step after {median['step after'] * 1e3:.3f} ms, "
            f"stepping in backward {median['step in backward'] * 1e3:.3f} ms; "
            f"iteration ratio {median['step in backward'] / median['step after']:.3f}, "
            f"step-cost ratio {step_in / step_after:.3f}"
        )


if __name__ == "__main__":
    main()
