"""``torch.compile`` of ``opt.step()``: adamkit's Adam against torch.optim's, in the same run.

torch's documented recipe (``@torch.compile(fullgraph=False) def fn(): opt.step()``) for
adamkit's Adam, torch's default Adam and torch's ``fused=True`` Adam, on 10 tensors of 100,000
float32 and on the parameter list of a small GPT-2 (2 layers, width 256, 1,000 tokens). Each
repeat takes the optimizers in turn (in rotated order), each from a fresh Dynamo and Inductor
with its caches off: the first compiled call, then the median of ``--steps`` compiled steps after
``--warmup``, then as many eager steps of a fresh optimizer for context. The table gives the
medians over ``--repeats``, the graph breaks and graphs Dynamo counted, and the ratios to
torch's default Adam.

    .venv/bin/python benchmarks/compile_step.py [--repeats 3] [--steps 50] [--warmup 5]
"""

import argparse
import os
import statistics
import time

import torch
import torch._dynamo
import torch._inductor.config
from torch._dynamo.utils import counters

import adamkit.torch


def gpt2_shapes(layers=2, width=256, vocab=1000, context=128):
    block = [(width,), (width,), (width, 3 * width), (3 * width,), (width, width), (width,)]
    block += [(width,), (width,), (width, 4 * width), (4 * width,), (4 * width, width), (width,)]
    return [(vocab, width), (context, width)] + block * layers + [(width,), (width,)]


WORKLOADS = {"10 x 100,000": [(100_000,)] * 10, "small GPT-2 (2 x 256)": gpt2_shapes()}
OPTIMIZERS = {
    "adamkit Adam": lambda params: adamkit.torch.Adam(params, lr=1e-3, weight_decay=1e-2),
    "torch Adam": lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-2),
    "torch Adam fused": lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-2, fused=True),
}


def fresh_optimizer(label, shapes):
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
    for param in params:
        param.grad = torch.randn(param.shape, generator=generator)
    return OPTIMIZERS[label](params)


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def steady(call, steps, warmup):
    for _ in range(warmup):
        call()
    return statistics.median(timed(call) for _ in range(steps))


def measure(label, shapes, args):
    """(first compiled call, steady compiled step, eager step) in seconds, graph breaks, graphs."""
    torch._dynamo.reset()
    counters.clear()
    optimizer = fresh_optimizer(label, shapes)

    @torch.compile(fullgraph=False)
    def compiled_step():
        optimizer.step()

    first = timed(compiled_step)
    compiled = steady(compiled_step, args.steps, args.warmup)
    breaks = sum(counters["graph_break"].values())
    graphs = counters["stats"]["unique_graphs"]
    eager = steady(fresh_optimizer(label, shapes).step, args.steps, args.warmup)
    return first, compiled, eager, breaks, graphs


def warm_up_the_compiler():
    """Inductor's imports and first-use set-up, out of every measured first call."""
    torch.compile(lambda x: x * 2 + 1)(torch.ones(8))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    torch._inductor.config.force_disable_caches = True
    warm_up_the_compiler()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at start; "
        f"medians of {args.repeats} alternating repeats\n"
    )
    print("| workload | optimizer | first compiled call, s | compiled step, ms | eager step, ms "
          "| graph breaks | graphs | first call / torch's | compiled step / torch's |")
    print("|---" * 9 + "|")
    labels = list(OPTIMIZERS)
    for name, shapes in WORKLOADS.items():
        results = {label: [] for label in labels}
        for repeat in range(args.repeats):
            for label in labels[repeat % len(labels):] + labels[: repeat % len(labels)]:
                results[label].append(measure(label, shapes, args))
        medians = {label: [statistics.median(column) for column in zip(*runs)] for label, runs in results.items()}
        reference = medians["torch Adam"]
        for label in labels:
            first, compiled, eager, breaks, graphs = medians[label]
            print(
                f"| {name} | {label} | {first:.2f} | {compiled * 1e3:.3f} | {eager * 1e3:.3f} | {breaks:.0f} | {graphs:.0f} "
                f"| {first / reference[0]:.3f} | {compiled / reference[1]:.2f} |"
            )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
