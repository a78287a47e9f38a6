"""Train a small MLP on scikit-learn's digits with each optimizer and compare them.

For each optimizer it reports the final training loss, the test accuracy, the seconds spent
in training steps and the bytes of optimizer state, and writes compare.png (training-loss
curves) and compare.json (every number, curves and hyperparameters included) to --out.
Runs are deterministic for a given --seed: all optimizers start from the same weights and
see the same minibatches.
"""

import argparse
import contextlib
import math
import sys
from pathlib import Path
from typing import NamedTuple

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import adamkit
import adamkit.torch
from adamkit.cli.plot import plot_train_loss
from adamkit.cli.report import document, results_table, write_json
from adamkit.cli.tasks import HIDDEN_UNITS, TEST_FRACTION, digits_split
from adamkit.cli.training import train


class Choice(NamedTuple):
    """An optimizer class, the hyperparameters ``compare`` gives it, and why."""

    factory: type
    hyperparameters: dict
    reason: str


# What each optimizer is given unless --lr says otherwise, and why (``--help`` lists these).
OPTIMIZERS = {
    "adam": Choice(adamkit.torch.Adam, {"lr": 1e-3}, "the α suggested by Kingma & Ba"),
    "adamw": Choice(
        adamkit.torch.AdamW, {"lr": 1e-3}, "Adam's α; weight decay is AdamW's default 1e-2"
    ),
    "adadelta": Choice(
        adamkit.torch.Adadelta,
        {"lr": 1.0},
        "Zeiler's rule has no step size; lr=1 applies it unscaled",
    ),
    "adamax": Choice(adamkit.torch.Adamax, {"lr": 2e-3}, "the α suggested by Kingma & Ba"),
    "sgd": Choice(
        adamkit.torch.SGD,
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        "effective step lr/(1 - momentum) = 0.5 suits standardised inputs",
    ),
    "adagrad": Choice(adamkit.torch.Adagrad, {"lr": 1e-2}, "torch's default"),
    "rmsprop": Choice(
        adamkit.torch.RMSprop,
        {"lr": 1e-3},
        "Keras's default; with torch's 1e-2 the loss jumps on this net",
    ),
}
DEFAULT_EPOCHS = 20
BATCH_SIZE = 32
DEFAULT_OUT = Path("runs/compare")
PLOT_FILE = "compare.png"
JSON_FILE = "compare.json"
PROG = "adamkit compare"
# The network is too small to gain from more threads, and with one the timings do not
# depend on how busy the other cores are.
TORCH_THREADS = 1


def optimizer_names(text):
    """Parse ``--optimizers adam,sgd`` into known, distinct names."""
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


def seed(text):
    number = _integer(text)
    if not 0 <= number < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {text!r}")
    return number


def add_arguments(parser):
    """Add the options of ``adamkit compare``; the epilog lists the default hyperparameters."""
    parser.epilog = "default hyperparameters:\n" + "\n".join(
        f"  {name:<9} {_settings(choice.hyperparameters)}: {choice.reason}"
        for name, choice in OPTIMIZERS.items()
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=DEFAULT_EPOCHS,
        help=f"passes over the training set (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--seed", type=seed, default=0,
        help="seed of the split, the initial weights and the minibatch order (default 0)",
    )
    parser.add_argument(
        "--optimizers", type=optimizer_names, default=list(OPTIMIZERS), metavar="NAME,...",
        help=f"which to compare (default {','.join(OPTIMIZERS)})",
    )
    parser.add_argument(
        "--lr", type=lr_override, action="append", default=[], metavar="NAME=LR",
        help="the learning rate of one optimizer, e.g. adam=3e-3 (repeatable)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
        help=f"where {PLOT_FILE} and {JSON_FILE} are written (default ./{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print nothing but errors; still write the files"
    )


def run(args, console=None):
    """Train with each chosen optimizer, then print the table and write the PNG and JSON.

    ``console`` is where the progress and the table go (default: a rich Console on stdout).
    """
    console = console or Console()
    try:
        lrs = _lr_per_optimizer(args.lr, args.optimizers)
    except ValueError as error:
        return _usage_error(str(error))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _usage_error(f"cannot write to --out {str(args.out)!r}: {error.strerror}")
    with _torch_threads(TORCH_THREADS):
        split = digits_split(args.seed)
        runs = _train_all(args, lrs, split, console)
    model = f"MLP {split.features}-{HIDDEN_UNITS}-{split.classes}"
    title = f"sklearn digits, {model}, {args.epochs} epochs, batch {BATCH_SIZE}, seed {args.seed}"
    config = {
        "dataset": "sklearn.datasets.load_digits",
        "model": f"{model}, ReLU",
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": BATCH_SIZE,
        "test_fraction": TEST_FRACTION,
        "train_samples": len(split.train_labels),
        "test_samples": len(split.test_labels),
        "torch_threads": TORCH_THREADS,
    }
    versions = {"adamkit": adamkit.__version__, "torch": torch.__version__}
    plot_path, json_path = args.out / PLOT_FILE, args.out / JSON_FILE
    plot_train_loss(runs, plot_path, title)
    write_json(json_path, document(config, runs, versions))
    if not args.quiet:
        console.print(results_table(runs, title))
        console.print(f"wrote {plot_path} and {json_path}")
    return 0


def _train_all(args, lrs, split, console):
    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("train loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=args.quiet,
    )
    runs = []
    with progress:
        tasks = {
            name: progress.add_task(name, total=args.epochs, start=False, loss="-")
            for name in args.optimizers
        }
        for name in args.optimizers:
            choice = OPTIMIZERS[name]
            hyperparameters = {**choice.hyperparameters, "lr": lrs[name]}

            def make_optimizer(parameters, factory=choice.factory, hyper=hyperparameters):
                return factory(parameters, **hyper)

            def advance(run, task=tasks[name]):
                progress.update(task, advance=1, loss=f"{run.train_loss[-1]:.4g}")

            progress.start_task(tasks[name])
            runs.append(train(name, make_optimizer, split, epochs=args.epochs,
                              batch_size=BATCH_SIZE, seed=args.seed, on_epoch=advance))
    return runs


def _lr_per_optimizer(overrides, names):
    """Each chosen optimizer's learning rate: its ``--lr`` if given, else the table's."""
    lrs = {name: OPTIMIZERS[name].hyperparameters["lr"] for name in names}
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


@contextlib.contextmanager
def _torch_threads(count):
    """Run the block with ``count`` torch threads, then restore the caller's setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _settings(hyperparameters):
    return ", ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in hyperparameters.items())


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
