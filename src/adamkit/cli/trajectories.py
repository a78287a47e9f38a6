"""Draw each optimizer's path on 2-D test functions, as contour plots.

Functions: Rosenbrock from (-1.2, 1), Beale from (1, 1.5), Rastrigin from (2.5, -2.2), the
saddle x² − y² from next to its saddle point, an ill-conditioned quadratic (per-coordinate step
sizes) and a quadratic with noisy gradients (momentum). Writes FUNCTION.png for each, with
every path labelled by its final distance to the minimum, and trajectories.json with every
path. --bias-correction adds bias-correction.png: Adam beside Adam without bias correction
over its first steps. --weight-decay adds weight-decay.png: AdamW against Adam with L2 decay
under the same weight_decay. The optimizers are adamkit.numpy's; torch is not needed.
"""

import argparse
import math
import sys
from pathlib import Path

DEFAULT_OUT = Path("runs/trajectories")
PROG = "adamkit trajectories"


def names(known, what):
    """An argparse type for a comma-separated list of distinct names from ``known``, or ``all``."""

    def parse(text):
        if text.strip().lower() == "all":
            return list(known)
        chosen = [name.strip().lower() for name in text.split(",")]
        for name in chosen:
            if name not in known:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {name!r} in {text!r}; choose from {', '.join(known)}"
                )
        repeated = sorted({name for name in chosen if chosen.count(name) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{', '.join(repeated)} is listed twice in {text!r}")
        return chosen

    return parse


def positive_int(text):
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return number


def nonnegative_float(text):
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return number


def seed(text):
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= number < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {text!r}")
    return number


def add_arguments(parser):
    """Add the options of ``adamkit trajectories``; the epilog lists each function's settings."""
    from adamkit.trajectories import FUNCTIONS, OPTIMIZERS
    from adamkit.trajectories.figures import (
        BIAS_CORRECTION,
        BIAS_CORRECTION_FILE,
        JSON_FILE,
        WEIGHT_DECAY,
        WEIGHT_DECAY_FILE,
    )

    lines = ["functions (learning rates per optimizer):"]
    for function in FUNCTIONS.values():
        drawn = function.optimizers or tuple(OPTIMIZERS)
        lrs = ", ".join(f"{name}={function.lrs[name]:g}" for name in drawn)
        lines.append(f"  {function.name:<16} from {function.start}, {function.steps} steps: {lrs}")
    parser.epilog = "\n".join(lines)
    parser.add_argument(
        "--functions", type=names(FUNCTIONS, "function"), default=list(FUNCTIONS), metavar="NAME,...",
        help=f"which functions to draw, or all (default {','.join(FUNCTIONS)})",
    )
    parser.add_argument(
        "--optimizers", type=names(OPTIMIZERS, "optimizer"), default=None, metavar="NAME,...",
        help=f"which optimizers to draw, of {','.join(OPTIMIZERS)}, or all (default: all; on noisy the four "
             "that pair with and without momentum)",
    )
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per path (default: each function's, listed below)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the gradient noise of the noisy function (default 0)")
    parser.add_argument(
        "--bias-correction", action="store_true",
        help=f"also draw Adam with and without bias correction over its first "
             f"{BIAS_CORRECTION['steps']} steps on {BIAS_CORRECTION['function']} ({BIAS_CORRECTION_FILE})",
    )
    parser.add_argument(
        "--weight-decay", type=nonnegative_float, nargs="?", const=WEIGHT_DECAY["decay"], default=None,
        metavar="LAMBDA",
        help=f"also draw AdamW against Adam with L2 decay, both with weight_decay LAMBDA "
             f"(default {WEIGHT_DECAY['decay']:g}) ({WEIGHT_DECAY_FILE})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"where the PNGs and {JSON_FILE} are written (default ./{DEFAULT_OUT})")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing but errors; still write the files")


def run(args, console=None):
    """Trace and draw every chosen function, then print the final distances."""
    from adamkit.compare.report import write_json
    from adamkit.trajectories import figures

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"{PROG}: error: cannot write to --out {str(args.out)!r}: {error.strerror}", file=sys.stderr)
        return 2
    document, written = {"seed": args.seed, "functions": {}}, []
    for name in args.functions:
        document["functions"][name] = figures.draw_function(name, args, written)
    if args.bias_correction:
        document["bias_correction"] = figures.draw_bias_correction(args, written)
    if args.weight_decay is not None:
        document["weight_decay"] = figures.draw_weight_decay(args, written)
    json_path = args.out / figures.JSON_FILE
    write_json(json_path, document, indent=None)
    if not args.quiet:
        from rich.console import Console

        console = console or Console()
        console.print(figures.distance_table(document))
        console.print(f"wrote {', '.join(map(str, [*written, json_path]))}")
    return 0
