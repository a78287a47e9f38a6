"""Step time of AdamW on bfloat16 parameters (with and without Kahan summation, with bfloat16
or float32 state, or 8-bit state) against float32 parameters, and torch's fused AdamW.

Workload A of issue 3: 20M parameters in 50 tensors. Each contender steps its own parameters
(float32, or the same values in bfloat16 with bfloat16 gradients, and bfloat16 state or, with
``state_dtype="fp32"``, float32 state, or with ``state_dtype="int8"`` 8-bit state) with
adamkit.torch AdamW, or torch.optim.AdamW(fused=True) on float32; the contenders alternate step by step, and each figure is the median of --steps steps
after 3 warm-up steps: wall-clock time, and (a check that holds up on a loaded machine with
--threads 1) the CPU time of the stepping thread. Also prints the bytes per parameter of
parameters plus optimizer state.

    .venv/bin/python benchmarks/kahan_speed.py [--steps 21] [--threads N]
"""

import argparse
import os
import statistics
import time

import torch

import adamkit.kernels
import adamkit.torch

SIZES = [400_000] * 50


def contender(dtype, kahan_summation, grads, state_dtype=None):
    params = [torch.zeros(n, dtype=dtype, requires_grad=True) for n in SIZES]
    for param, grad in zip(params, grads):
        param.grad = grad.to(dtype)
    return params, adamkit.torch.AdamW(params, lr=1e-3, kahan_summation=kahan_summation, state_dtype=state_dtype)


def torch_fused(grads):
    params = [torch.zeros(n, requires_grad=True) for n in SIZES]
    for param, grad in zip(params, grads):
        param.grad = grad.clone()
    return params, torch.optim.AdamW(params, lr=1e-3, fused=True)


def bytes_per_param(params, optimizer):
    tensors = [*params, *(v for p in params for k, v in optimizer.state[p].items() if k != "step")]
    return sum(t.numel() * t.element_size() for t in tensors) / sum(SIZES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=21)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adamkit.kernels.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(n, generator=generator) for n in SIZES]
    contenders = {
        "fp32 params": contender(torch.float32, None, grads),
        "bf16 params + Kahan": contender(torch.bfloat16, None, grads),
        "bf16 params, kahan_summation=False": contender(torch.bfloat16, False, grads),
        "bf16 params, fp32 state + Kahan": contender(torch.bfloat16, None, grads, "fp32"),
        "bf16 params, fp32 state, kahan_summation=False": contender(torch.bfloat16, False, grads, "fp32"),
        "fp32 params, int8 state": contender(torch.float32, None, grads, "int8"),
        "bf16 params + Kahan, int8 state": contender(torch.bfloat16, None, grads, "int8"),
        "bf16 params, int8 state, kahan_summation=False": contender(torch.bfloat16, False, grads, "int8"),
        "torch.optim fp32, fused": torch_fused(grads),
    }
    wall = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    load = os.getloadavg()[0]
    for step in range(args.steps + 3):
        for name, (_, optimizer) in contenders.items():
            started, started_cpu = time.perf_counter(), time.thread_time()
            optimizer.step()
            if step >= 3:
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.thread_time() - started_cpu)
    print(
        f"AdamW, 20M params in 50 tensors, {args.threads} thread(s), median of {args.steps} alternating "
        f"steps; load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print("| parameters | ms/step (wall) | ratio to fp32 | CPU ms of the stepping thread | ratio | bytes/param (params + state) |")
    print("|---|---|---|---|---|---|")
    base, base_cpu = statistics.median(wall["fp32 params"]), statistics.median(cpu["fp32 params"])
    for name, (params, optimizer) in contenders.items():
        median, median_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        print(
            f"| {name} | {median * 1e3:.1f} | {median / base:.2f} | {median_cpu * 1e3:.1f} | "
            f"{median_cpu / base_cpu:.2f} | {bytes_per_param(params, optimizer):g} |"
        )


if __name__ == "__main__":
    main()
