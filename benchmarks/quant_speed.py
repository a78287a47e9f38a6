"""Time 8-bit Adam (adamkit.torch, state_dtype="int8") against torch's fused fp32 Adam.

Workload A of issue 3: 20M float32 parameters in 50 tensors. The two optimizers step their own
copies of the parameters with the same gradients, alternating step by step; each figure is the
median of --steps steps after 3 warm-up steps. Prints wall-clock ms/step and, as a check that
holds up on a loaded machine, the CPU seconds of the stepping thread with 1 thread each.

    .venv/bin/python benchmarks/quant_speed.py [--steps 15] [--threads N]
"""

import argparse
import os
import statistics
import time

import torch

import adamkit.torch as akt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--amsgrad", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    generator = torch.Generator().manual_seed(0)
    sizes = [400_000] * 50
    grads = [torch.randn(n, generator=generator) for n in sizes]

    def params():
        out = [torch.zeros(n, requires_grad=True) for n in sizes]
        for p, g in zip(out, grads):
            p.grad = g
        return out

    contenders = {
        "torch fused fp32 Adam": torch.optim.Adam(params(), lr=1e-3, amsgrad=args.amsgrad, fused=True),
        "adamkit int8 Adam": akt.Adam(params(), lr=1e-3, amsgrad=args.amsgrad, state_dtype="int8"),
        "adamkit fp32 Adam": akt.Adam(params(), lr=1e-3, amsgrad=args.amsgrad),
    }
    wall = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    load = os.getloadavg()[0]
    for step in range(args.steps + 3):
        for name, opt in contenders.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            opt.step()
            t1, c1 = time.perf_counter(), time.thread_time()
            if step >= 3:
                wall[name].append(t1 - t0)
                cpu[name].append(c1 - c0)
    print(f"20M fp32 params in 50 tensors, amsgrad={args.amsgrad}, {args.threads} thread(s), "
          f"median of {args.steps} alternating steps; load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print("| optimizer | ms/step (wall) | ratio to torch fused | CPU ms of the calling thread |")
    print("|---|---|---|---|")
    base = statistics.median(wall["torch fused fp32 Adam"])
    for name in contenders:
        ms = statistics.median(wall[name])
        print(f"| {name} | {ms * 1e3:.1f} | {ms / base:.2f} | {statistics.median(cpu[name]) * 1e3:.1f} |")
    state = contenders["adamkit int8 Adam"].state
    nbytes = sum(v.numel() * v.element_size() for s in state.values() for k, v in s.items() if k != "step")
    print(f"int8 state: {nbytes / sum(sizes):.3f} bytes per parameter")


if __name__ == "__main__":
    main()
