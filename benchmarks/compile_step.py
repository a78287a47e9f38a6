"""``torch.compile`` of ``opt.step()``: adamkit's Adam against torch.optim's, in the same run.

torch's documented recipe (``@torch.compile(fullgraph=False) def fn(): opt.step()``) for
adamkit's Adam, torch's default Adam and torch's ``fused=True`` Adam, on 10 tensors of 100,000
float32 and on the parameter list of a small GPT-2 (2 layers, width 256, 1,000 tokens). Each
repeat starts from a fresh Dynamo, with Inductor's caches off, and compiles the optimizers in
turn (in an order rotated between repeats), timing each first call; then it steps all of them,
compiled and eager (a second optimizer of each, for context), one step each in turn, and keeps
the median of ``--steps`` steps after ``--warmup``. The table gives the medians over
``--repeats``, the graph breaks and graphs Dynamo counted at the first call, and the ratios to
torch's default Adam; and the frames Dynamo compiled during the steady steps (recompiles).

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


def frames_compiled():
    return counters["frames"]["total"]


def compiled(label, shapes):
    """torch's recipe over a fresh optimizer, the time of its first call, and the graph breaks
    and graphs Dynamo counted then."""
    optimizer = fresh_optimizer(label, shapes)

    @torch.compile(fullgraph=False)
    def compiled_step():
        optimizer.step()

    breaks, graphs = sum(counters["graph_break"].values()), counters["stats"]["unique_graphs"]
    first = timed(compiled_step)
    breaks = sum(counters["graph_break"].values()) - breaks
    return compiled_step, first, breaks, counters["stats"]["unique_graphs"] - graphs


def one_repeat(labels, shapes, args):
    """``{label: (first call, compiled step, eager step, graph breaks, graphs, recompiles)}``,
    times in seconds; recompiles are the frames Dynamo compiled during the steady steps."""
    torch._dynamo.reset()
    counters.clear()
    made = {label: compiled(label, shapes) for label in labels}
    calls = {(label, "compiled"): made[label][0] for label in labels}
    calls.update({(label, "eager"): fresh_optimizer(label, shapes).step for label in labels})
    times = {key: [] for key in calls}
    recompiles = dict.fromkeys(labels, 0)
    for step in range(args.warmup + args.steps):
        for (label, mode), call in calls.items():
            frames = frames_compiled()
            elapsed = timed(call)
            recompiles[label] += frames_compiled() - frames
            if step >= args.warmup:
                times[label, mode].append(elapsed)
    median = {key: statistics.median(values) for key, values in times.items()}
    return {
        label: (first, median[label, "compiled"], median[label, "eager"], breaks, graphs, recompiles[label])
        for label, (_, first, breaks, graphs) in made.items()
    }


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
        f"medians of {args.repeats} repeats\n"
    )
    print("| workload | optimizer | first compiled call, s | compiled step, ms | eager step, ms "
          "| graph breaks | graphs | recompiles | first call / torch's | compiled step / torch's |")
    print("|---" * 10 + "|")
    labels = list(OPTIMIZERS)
    for name, shapes in WORKLOADS.items():
        results = {label: [] for label in labels}
        for repeat in range(args.repeats):
            order = labels[repeat % len(labels) :] + labels[: repeat % len(labels)]
            for label, values in one_repeat(order, shapes, args).items():
                results[label].append(values)
        medians = {label: [statistics.median(column) for column in zip(*runs)] for label, runs in results.items()}
        reference = medians["torch Adam"]
        for label in labels:
            first, compiled_step, eager, breaks, graphs, recompiles = medians[label]
            print(
                f"| {name} | {label} | {first:.2f} | {compiled_step * 1e3:.3f} | {eager * 1e3:.3f} | {breaks:.0f} "
                f"| {graphs:.0f} | {recompiles:.0f} | {first / reference[0]:.3f} | {compiled_step / reference[1]:.2f} |"
            )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
