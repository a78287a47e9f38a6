"""Time 8-bit state (adamkit.torch, state_dtype="int8") against torch's fastest fp32 path.

Workload A of issue 3: 20M float32 parameters in 50 tensors, stepped by one rule (--rule):
Adam (against torch's fused Adam), Adamax or Adadelta (against torch's foreach and for-loop
paths; torch has no fused kernel for them). Every optimizer steps its own copy of the
parameters with the same gradients, alternating step by step; each figure is the median of
--steps steps after 3 warm-up steps. Prints wall-clock ms/step and, as a check that holds up on
a loaded machine, the CPU seconds of the stepping thread with 1 thread each. The ratio is to
the fastest torch path.

    .venv/bin/python benchmarks/quant_speed.py [--rule adam|adamax|adadelta] [--steps 15] [--threads N]
"""

import argparse
import os
import statistics
import time

import torch

import adamkit.torch as akt

# Per rule: the optimizer's name, its hyperparameters, and torch's paths to time.
RULES = {
    "adam": ("Adam", dict(lr=1e-3), {"fused": dict(fused=True)}),
    "adamax": ("Adamax", dict(lr=2e-3), {"foreach": dict(foreach=True), "for-loop": dict(foreach=False)}),
    "adadelta": ("Adadelta", dict(lr=1.0), {"foreach": dict(foreach=True), "for-loop": dict(foreach=False)}),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rule", choices=sorted(RULES), default="adam")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--amsgrad", action="store_true", help="Adam only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    name, hyper, torch_paths = RULES[args.rule]
    if args.amsgrad:
        hyper = {**hyper, "amsgrad": True}
    generator = torch.Generator().manual_seed(0)
    sizes = [400_000] * 50
    grads = [torch.randn(n, generator=generator) for n in sizes]

    def params():
        out = [torch.zeros(n, requires_grad=True) for n in sizes]
        for p, g in zip(out, grads):
            p.grad = g
        return out

    contenders = {
        f"torch {path} fp32 {name}": getattr(torch.optim, name)(params(), **hyper, **options)
        for path, options in torch_paths.items()
    }
    contenders[f"adamkit int8 {name}"] = getattr(akt, name)(params(), **hyper, state_dtype="int8")
    contenders[f"adamkit fp32 {name}"] = getattr(akt, name)(params(), **hyper)
    wall = {label: [] for label in contenders}
    cpu = {label: [] for label in contenders}
    load = os.getloadavg()[0]
    for step in range(args.steps + 3):
        for label, opt in contenders.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            opt.step()
            t1, c1 = time.perf_counter(), time.thread_time()
            if step >= 3:
                wall[label].append(t1 - t0)
                cpu[label].append(c1 - c0)
    print(f"20M fp32 params in 50 tensors, {name} {hyper}, {args.threads} thread(s), "
          f"median of {args.steps} alternating steps; load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print("| optimizer | ms/step (wall) | ratio to torch's fastest | CPU ms of the calling thread |")
    print("|---|---|---|---|")
    base = min(statistics.median(wall[f"torch {path} fp32 {name}"]) for path in torch_paths)
    for label in contenders:
        ms = statistics.median(wall[label])
        print(f"| {label} | {ms * 1e3:.1f} | {ms / base:.2f} | {statistics.median(cpu[label]) * 1e3:.1f} |")
    state = contenders[f"adamkit int8 {name}"].state
    nbytes = sum(v.numel() * v.element_size() for s in state.values() for k, v in s.items() if k != "step")
    print(f"int8 state: {nbytes / sum(sizes):.3f} bytes per parameter")


if __name__ == "__main__":
    main()
