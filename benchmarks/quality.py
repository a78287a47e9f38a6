"""Final train loss of compact optimizer state and bfloat16 parameters against float32 Adam (issue 5).

The issue's target: on `adamkit compare`'s mlp and cnn tasks and on a small character-level
transformer language model, the final train loss within 2 % of fp32 Adam with 8-bit state, and
within 1 % with bfloat16 state and with bfloat16 parameters (Kahan summation) against float32
parameters, over 3 seeds.

Tasks (--tasks):
- mlp, cnn: `adamkit compare`'s own tasks, trained by its own code (`adamkit.compare.torch_training`):
  the same digits split, models, initial weights, dropout masks, minibatches, epochs and constant
  learning rate (compare's for Adam); the final train loss is compare's, on the whole train set
  with dropout off;
- charlm: the causal character-level transformer of `char_transformer.py` on Python's help text.

Variants (--variants), all with adamkit.torch.Adam (no weight decay) and one learning rate per
task whatever the variant:
- fp32: float32 parameters and state, the baseline every gap is measured against (always run);
- int8: state_dtype="int8" (threshold 2 %);
- bf16-state: state_dtype="bf16", float32 parameters (threshold 1 %);
- bf16-params: the model in bfloat16 (parameters, forward, backward), Kahan summation and
  bfloat16 state, adamkit's defaults for bfloat16 parameters (threshold 1 %);
- bf16-params-fp32-state: the same with state_dtype="fp32" (threshold 1 %);
- bf16-params-int8: bfloat16 parameters, Kahan summation and state_dtype="int8" (8-bit state for
  the tensors of at least 4096 elements; threshold 2 %, as int8's);
and three diagnostics with no threshold, which tell how large a gap is worth noticing and
where a bfloat16 gap comes from:
- fp64: the model and the state in float64, the baseline's training rounded less: its gap is
  how far rounding alone, with no change to the math, moves the final loss;
- bf16-params-plain: bfloat16 parameters with kahan_summation=False;
- fp32-autocast: float32 parameters and state, forward and loss under
  torch.autocast("cpu", dtype=torch.bfloat16): the bfloat16 arithmetic without the bfloat16 store.

Every loss is evaluated in float32 from the trained weights (a bfloat16 weight converts
exactly). A gap is a variant's loss over fp32's minus 1: per seed against the same seed, and
for the mean against the mean. "met" compares the mean's gap, in either direction, with the
threshold. --lr runs the whole comparison at other learning rates (the same for every
variant), --epochs and --steps change the length of the digits tasks and of charlm.

    nice -n 19 .venv/bin/python benchmarks/quality.py [--tasks mlp cnn charlm] [--variants ...]
        [--seeds 3] [--lr LR ...] [--epochs N] [--steps N] [--out FILE.md]
"""

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import char_transformer
import torch

import adamkit
import adamkit.kernels
from adamkit.compare import torch_training
from adamkit.compare.precision import FLOAT32, Precision
from adamkit.compare.tasks import BATCH_SIZE, LEARNING_RATES, TASKS, digits_split

BFLOAT16 = Precision(torch.bfloat16)


@dataclass(frozen=True)
class Variant:
    """How one variant trains: its precision and the optimizer's extra keyword arguments."""

    description: str
    threshold: float | None
    precision: Precision = FLOAT32
    options: dict = field(default_factory=dict)


BASELINE = "fp32"
VARIANTS = {
    BASELINE: Variant("float32 parameters and state (the baseline)", None),
    "int8": Variant('state_dtype="int8", float32 parameters', 0.02, options={"state_dtype": "int8"}),
    "bf16-state": Variant('state_dtype="bf16", float32 parameters', 0.01, options={"state_dtype": "bf16"}),
    "bf16-params": Variant("bfloat16 parameters, Kahan summation, bfloat16 state (the defaults)", 0.01, BFLOAT16),
    "bf16-params-fp32-state": Variant(
        'bfloat16 parameters, Kahan summation, state_dtype="fp32"', 0.01, BFLOAT16, {"state_dtype": "fp32"}
    ),
    "bf16-params-int8": Variant(
        'bfloat16 parameters, Kahan summation, state_dtype="int8"', 0.02, BFLOAT16, {"state_dtype": "int8"}
    ),
    "fp64": Variant("diagnostic: float64 parameters and state", None, Precision(torch.float64)),
    "bf16-params-plain": Variant(
        "diagnostic: bfloat16 parameters, kahan_summation=False, bfloat16 state", None, BFLOAT16,
        {"kahan_summation": False},
    ),
    "fp32-autocast": Variant(
        "diagnostic: float32 parameters and state, forward and loss under bfloat16 autocast", None,
        Precision(autocast=torch.bfloat16),
    ),
}
DIGITS_TASKS = ("mlp", "cnn")
CHAR_LM = "charlm"


def final_train_loss(task_name, variant, seed, lr, args, text):
    """One run's final train loss; mlp and cnn are trained by compare's own code."""
    if task_name == CHAR_LM:
        return char_transformer.train(
            text, seed, lr=lr, steps=args.steps or char_transformer.STEPS,
            precision=variant.precision, optimizer_options=variant.options,
        )
    task = TASKS[task_name]
    _, run = torch_training.train(
        task, "adam", lr, digits_split(seed), seed=seed, epochs=args.epochs or task.epochs,
        precision=variant.precision, optimizer_options=variant.options,
    )
    return run.train_loss[-1]


def default_lr(task_name):
    return char_transformer.LR if task_name == CHAR_LM else LEARNING_RATES["adam"][task_name]


def describe(task_name, args, text):
    if task_name == CHAR_LM:
        module = char_transformer
        return (f"charlm: {module.LAYERS}-layer causal transformer, width {module.WIDTH}, {module.HEADS} heads, "
                f"context {module.CONTEXT}, on Python {platform.python_version()}'s pydoc_data.topics "
                f"({len(text.ids):,} characters, {len(text.alphabet)} distinct); {args.steps or module.STEPS} steps "
                f"of batch {module.BATCH}, constant lr")
    task = TASKS[task_name]
    return (f"{task_name}: adamkit compare's {task.model}; sklearn digits, {args.epochs or task.epochs} epochs "
            f"of batch {BATCH_SIZE}, constant lr")


def percent(value):
    return f"{value:+.2%}"


def verdict(gap, threshold):
    if threshold is None:
        return "—"
    if abs(gap) <= threshold:
        return "yes"
    return "no" if gap > 0 else "no (lower)"


def table(losses, seconds, seeds):
    """The Markdown rows of one task at one lr; ``losses[variant]`` lists one loss per seed."""
    base = losses[BASELINE]
    lines = [
        "| variant | threshold | " + " | ".join(f"seed {seed}" for seed in seeds)
        + " | mean | gap of mean | largest seed gap | met | CPU s/run |",
        "|---|---|" + "---|" * (len(seeds) + 5),
    ]
    for name, values in losses.items():
        threshold = VARIANTS[name].threshold
        gaps = [value / reference - 1 for value, reference in zip(values, base)]
        mean_gap = statistics.mean(values) / statistics.mean(base) - 1
        cells = [f"{value:.4f}" if name == BASELINE else f"{value:.4f} ({percent(gap)})"
                 for value, gap in zip(values, gaps)]
        tail = ["—", "—"] if name == BASELINE else [percent(mean_gap), percent(max(gaps, key=abs))]
        lines.append(
            f"| {name} | " + ("—" if threshold is None else f"{threshold:.0%}") + " | " + " | ".join(cells)
            + f" | {statistics.mean(values):.4f} | " + " | ".join(tail)
            + f" | {verdict(mean_gap, threshold)} | {statistics.mean(seconds[name]):.1f} |"
        )
    return lines


def command():
    """The command line that ran this, with its niceness."""
    niceness = os.nice(0)
    return (f"nice -n {niceness} " if niceness else "") + ".venv/bin/python " + shlex.join(
        ["benchmarks/quality.py", *sys.argv[1:]]
    )


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=[*DIGITS_TASKS, CHAR_LM], default=[*DIGITS_TASKS, CHAR_LM])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="fp32 is always run (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 to N-1 (default 3)")
    parser.add_argument("--lr", type=float, nargs="+", help="learning rates to run (default: each task's own)")
    parser.add_argument("--epochs", type=int, help="epochs of mlp and cnn (default: compare's)")
    parser.add_argument("--steps", type=int, help=f"steps of charlm (default {char_transformer.STEPS})")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    for option in ("seeds", "epochs", "steps"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be an integer >= 1, got {value}")
    if args.lr is not None and not all(lr > 0 for lr in args.lr):
        parser.error(f"--lr must be > 0, got {args.lr}")
    args.variants = [BASELINE, *dict.fromkeys(name for name in args.variants if name != BASELINE)]
    return args


def main(argv=None):
    args = parse_arguments(argv)
    torch.set_num_threads(1)
    adamkit.kernels.set_num_threads(1)
    text = char_transformer.Text(char_transformer.corpus()) if CHAR_LM in args.tasks else None
    seeds = range(args.seeds)
    report = [
        "```", command(), "```", "",
        f"adamkit {adamkit.__version__}, torch {torch.__version__}, Python {platform.python_version()}; "
        "adamkit.torch.Adam, 1 thread; final train loss in float32 from the trained weights "
        "(gap to fp32 of the same seed in brackets); CPU seconds of a whole run, evaluations included.", "",
        *[f"- {name}: {VARIANTS[name].description}" for name in args.variants],
    ]
    print("\n".join(report), flush=True)
    for task_name in args.tasks:
        for lr in args.lr or [default_lr(task_name)]:
            losses, seconds = {}, {}
            for name in args.variants:
                losses[name], seconds[name] = [], []
                for seed in seeds:
                    started = time.process_time()
                    losses[name].append(final_train_loss(task_name, VARIANTS[name], seed, lr, args, text))
                    seconds[name].append(time.process_time() - started)
                    print(f"{task_name} lr={lr:g} {name} seed {seed}: loss {losses[name][-1]:.5f}, "
                          f"{seconds[name][-1]:.1f} CPU s", file=sys.stderr, flush=True)
            section = ["", f"**{describe(task_name, args, text)}, lr {lr:g}**", "", *table(losses, seconds, seeds)]
            print("\n".join(section), flush=True)
            report += section
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
