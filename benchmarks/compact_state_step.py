"""Step time of adamkit.torch AdamW with float32, bfloat16 and 8-bit state, in the same run.

Three workloads of float32 parameters: issue 3's A (20M parameters in 50 tensors), 1,000
tensors of 8,192 and 200 of 65,536. The optimizers take turns, one step each, and the table
gives the median of ``--steps`` steps after ``--warmup``, with torch's fused AdamW (float32
state) as the reference.

    .venv/bin/python benchmarks/compact_state_step.py [--steps 15] [--warmup 3]
"""

import argparse
import os
import statistics
import time

import torch

import adamkit.torch

WORKLOADS = {"A: 50 x 400,000": (50, 400_000), "1,000 x 8,192": (1000, 8192), "200 x 65,536": (200, 65536)}
STATE_DTYPES = {"adamkit fp32 state": None, "adamkit bf16 state": "bf16", "adamkit int8 state": "int8"}


def optimizers(count, numel):
    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(numel, generator=generator) for _ in range(count)]
    made = {}
    for label, state_dtype in [*STATE_DTYPES.items(), ("torch fused", "torch")]:
        params = [torch.nn.Parameter(torch.zeros(numel)) for _ in range(count)]
        for param, grad in zip(params, grads):
            param.grad = grad
        if state_dtype == "torch":
            made[label] = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True)
        else:
            made[label] = adamkit.torch.AdamW(params, lr=1e-3, weight_decay=1e-2, state_dtype=state_dtype)
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    print(f"AdamW, medians of {args.steps} alternating steps, ms; load average {os.getloadavg()[0]:.1f} at start\n")
    labels = [*STATE_DTYPES, "torch fused"]
    print("| workload | " + " | ".join(labels) + " | bf16 / fp32 | int8 / fp32 |")
    print("|---" * (len(labels) + 3) + "|")
    for name, (count, numel) in WORKLOADS.items():
        made = optimizers(count, numel)
        times = {label: [] for label in made}
        for step in range(args.warmup + args.steps):
            for label, optimizer in made.items():
                start = time.perf_counter()
                optimizer.step()
                if step >= args.warmup:
                    times[label].append(time.perf_counter() - start)
        medians = {label: statistics.median(values) * 1e3 for label, values in times.items()}
        fp32 = medians["adamkit fp32 state"]
        cells = [f"{medians[label]:.1f}" for label in labels]
        ratios = [f"{medians[label] / fp32:.2f}×" for label in ("adamkit bf16 state", "adamkit int8 state")]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")
        del made


if __name__ == "__main__":
    main()
