"""Train the Adam paper's three small models on scikit-learn's digits with each optimizer.

Tasks (--task): logreg, L2-regularised logistic regression with a lr/√t schedule (the paper's
Fig. 1); mlp, two hidden layers of 1000 ReLU units with dropout (Fig. 2); cnn, a small
convolutional net (Fig. 3). For each optimizer it reports the final training loss, the test
accuracy, the area under the training-loss curve, the seconds spent in training steps and the
bytes of optimizer state, and writes TASK.png (loss and accuracy curves) and TASK.json (every
number) to --out; --diagnostics adds TASK-diagnostics.png. With --seeds N the numbers are
means over N seeds and the curves show the range. All optimizers of one seed start from the
same weights and see the same minibatches. --backend numpy runs logreg on adamkit.numpy
without torch.
"""

import argparse
import math
import sys
from pathlib import Path

from adamkit.compare.choices import OPTIMIZERS
from adamkit.compare.comparison import run_task
from adamkit.compare.tasks import LEARNING_RATES, TASKS

DEFAULT_TASK = "mlp"
DEFAULT_OUT = Path("runs/compare")
PROG = "adamkit compare"
INSTALL_HINT = "pip install 'adamkit[cli]'"


def optimizer_names(text):
    """Parse ``--optimizers adam,sgd`` into known, distinct names; ``all`` is every optimizer."""
    if text.strip().lower() == "all":
        return list(OPTIMIZERS)
    names = [name.strip().lower() for name in text.split(",")]
    for name in names:
        _check_known(name, text)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(repeated)} is listed twice in {text!r}")
    return names


def lr_override(text):
    """Parse ``--lr NAME=LR`` into ``(name, lr)``; ``lr`` must be a finite number > 0."""
    name, equals, value = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"expected NAME=LR such as adam=1e-3, got {text!r}")
    name = name.strip().lower()
    _check_known(name, text)
    try:
        lr = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the learning rate in {text!r} is not a number") from None
    if not (math.isfinite(lr) and lr > 0):
        raise argparse.ArgumentTypeError(
            f"the learning rate in {text!r} must be a finite number > 0"
        )
    return name, lr


def positive_int(text):
    number = _integer(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return number


def seed_value(text):
    number = _integer(text)
    if not 0 <= number < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {text!r}")
    return number


def add_arguments(parser):
    """Add the options of ``adamkit compare``; the epilog lists each task's learning rates."""
    header = f"  {'':<9}" + "".join(f"{task:>8}" for task in TASKS)
    rows = [
        f"  {name:<9}" + "".join(f"{LEARNING_RATES[name][task]:>8g}" for task in TASKS)
        + f"   {choice.label}" + "".join(f", {key}={value}" for key, value in choice.settings.items())
        for name, choice in OPTIMIZERS.items()
    ]
    tasks = [f"  {task.name:<7} {task.model}; {task.epochs} epochs, lr schedule {task.lr_schedule}"
             for task in TASKS.values()]
    parser.epilog = "\n".join(["tasks:", *tasks, "", "default learning rates:", header, *rows])
    parser.add_argument(
        "--task", choices=[*TASKS, "all"], default=DEFAULT_TASK,
        help=f"which task to run, or all three in turn (default {DEFAULT_TASK})",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None,
        help="passes over the training set (default: the task's, listed below)",
    )
    parser.add_argument(
        "--seed", type=seed_value, default=0,
        help="the first seed of the split, the initial weights and the minibatch order (default 0)",
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=1,
        help="how many seeds to run, from --seed on; the curves show their mean and range (default 1)",
    )
    parser.add_argument(
        "--optimizers", type=optimizer_names, default=list(OPTIMIZERS), metavar="NAME,...",
        help=f"which to compare, or all (default {','.join(OPTIMIZERS)})",
    )
    parser.add_argument(
        "--lr", type=lr_override, action="append", default=[], metavar="NAME=LR",
        help="the learning rate of one optimizer, e.g. adam=3e-3, for every task run (repeatable)",
    )
    parser.add_argument(
        "--backend", choices=("torch", "numpy"), default="torch",
        help="the front end: torch, or numpy, which runs logreg only and needs no torch (default torch)",
    )
    parser.add_argument(
        "--diagnostics", action="store_true",
        help="read adamkit.diagnostics at about 40 steps of the first seed and plot them",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
        help=f"where TASK.png and TASK.json are written (default ./{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print nothing but errors; still write the files"
    )


def run(args, console=None):
    """Run each chosen task with each chosen optimizer, then print the table and write the files.

    ``console`` is where the progress and the tables go (default: a rich Console on stdout).
    """
    tasks = list(TASKS) if args.task == "all" else [args.task]
    try:
        _check_combination(args, tasks)
        lrs = {task: _lr_per_optimizer(args.lr, args.optimizers, task) for task in tasks}
    except ValueError as error:
        return _usage_error(str(error))
    if args.backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            return _usage_error(f"--backend torch needs 'torch', which is not installed; run: "
                                f"{INSTALL_HINT}, or use --backend numpy --task logreg")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _usage_error(f"cannot write to --out {str(args.out)!r}: {error.strerror}")
    from rich.console import Console

    console = console or Console()
    for task in tasks:
        run_task(args, TASKS[task], lrs[task], console)
    return 0


def _check_combination(args, tasks):
    if args.backend == "numpy" and tasks != ["logreg"]:
        raise ValueError(f"--backend numpy runs only --task logreg, not {args.task!r}")
    if args.seed + args.seeds > 2**32:
        raise ValueError(f"--seed {args.seed} with --seeds {args.seeds} goes past 2**32 - 1")


def _lr_per_optimizer(overrides, names, task):
    """Each chosen optimizer's learning rate on ``task``: its ``--lr`` if given, else the table's."""
    lrs = {name: LEARNING_RATES[name][task] for name in names}
    given = set()
    for name, lr in overrides:
        if name not in lrs:
            raise ValueError(
                f"--lr {name}=... names {name!r}, which is not in --optimizers {','.join(names)}"
            )
        if name in given:
            raise ValueError(f"--lr is given twice for {name!r}")
        given.add(name)
        lrs[name] = lr
    return lrs


def _check_known(name, text):
    if name not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {name!r} in {text!r}; choose from {', '.join(OPTIMIZERS)}"
        )


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _usage_error(message):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2
