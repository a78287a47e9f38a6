"""The learning-rate sweep behind ``adamkit compare``'s learning rates (``Variant.compare_lrs``).

For each task and optimizer, train seed 0 at the task's default epochs with compare's own code
at learning rates of the ladder 1, 3, 10, 30, ... × 10⁻⁶ (about 3× apart): the optimizer's
current learning rate on the task and ``--side`` rungs on each side (default 2); while the best (the smallest area
under the per-epoch training-loss curve, compare's *loss AUC*) lies at an end of the grid, one
more rung is added beyond it, at most ``--extend`` times. Prints, per task, the Markdown table of
``docs/compare.md`` ("lr: loss AUC", the lowest in bold, — where the loss diverged).

    .venv/bin/python benchmarks/compare_lr_sweep.py --optimizers nadam,radam --tasks mlp

logreg runs on the NumPy front end, as the sweep of ``docs/compare.md`` did; mlp and cnn on
adamkit.torch, one thread.
"""

import argparse
import math

from adamkit.compare import numpy_training, torch_training
from adamkit.compare.choices import OPTIMIZERS
from adamkit.compare.tasks import LEARNING_RATES, TASKS, digits_split

LADDER = tuple(mantissa * 10.0**exponent for exponent in range(-6, 3) for mantissa in (1, 3))
SEED = 0


def loss_area(task, name, lr):
    """compare's loss AUC of optimizer ``name`` at ``lr`` on ``task``, seed 0; ``inf`` if it diverged."""
    trainer = numpy_training if TASKS[task].numpy_backend else torch_training
    _, run = trainer.train(TASKS[task], name, lr, digits_split(SEED), seed=SEED, epochs=TASKS[task].epochs)
    return run.loss_area if math.isfinite(run.loss_area) else math.inf


def nearest_rung(lr):
    return min(range(len(LADDER)), key=lambda index: abs(math.log(LADDER[index] / lr)))


def sweep(task, name, side, extend):
    """``{lr: loss AUC}`` over the grid around ``name``'s learning rate on ``task``."""
    center = nearest_rung(LEARNING_RATES[name][task])
    low, high = max(0, center - side), min(len(LADDER) - 1, center + side)
    areas = {LADDER[index]: loss_area(task, name, LADDER[index]) for index in range(low, high + 1)}
    for _ in range(extend):
        best = min(areas, key=areas.get)
        if best == LADDER[low] and low > 0:
            low -= 1
            areas[LADDER[low]] = loss_area(task, name, LADDER[low])
        elif best == LADDER[high] and high < len(LADDER) - 1:
            high += 1
            areas[LADDER[high]] = loss_area(task, name, LADDER[high])
        else:
            break
    return dict(sorted(areas.items()))


def table_row(name, areas):
    best = min(areas, key=areas.get)
    cells = []
    for lr, area in areas.items():
        shown = "—" if math.isinf(area) else f"{area:.3g}"
        cells.append(f"{lr:g}: **{shown}**" if lr == best else f"{lr:g}: {shown}")
    return f"| {OPTIMIZERS[name].label} | {' · '.join(cells)} |", best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="compare's names, comma-separated")
    parser.add_argument("--tasks", default=",".join(TASKS), help="compare's tasks, comma-separated")
    parser.add_argument("--side", type=int, default=2, help="rungs on each side of the current learning rate")
    parser.add_argument("--extend", type=int, default=2, help="rungs added beyond an end where the best lies")
    args = parser.parse_args(argv)
    import torch

    from adamkit import kernels

    torch.set_num_threads(1)
    kernels.set_num_threads(1)
    names = [name.strip() for name in args.optimizers.split(",")]
    unknown = [name for name in names if name not in OPTIMIZERS]
    if unknown:
        parser.error(f"unknown optimizers {unknown}; choose from {', '.join(OPTIMIZERS)}")
    chosen = {}
    for task in args.tasks.split(","):
        print(f"\n**{task}**\n\n| optimizer | lr: loss AUC (lowest in bold; — diverged) |\n|---|---|", flush=True)
        for name in names:
            row, best = table_row(name, sweep(task, name, args.side, args.extend))
            chosen.setdefault(name, {})[task] = best
            print(row, flush=True)
    print("\nbest learning rates (compare_lrs):")
    for name, lrs in chosen.items():
        print(f"  {name}: {{{', '.join(f'{task!r}: {lr:g}' for task, lr in lrs.items())}}}", flush=True)


if __name__ == "__main__":
    main()
