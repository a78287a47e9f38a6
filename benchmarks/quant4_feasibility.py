"""Would 4-bit block-wise Adam state hold issue 5's quality target? A simulation, before any kernel.

Issue 5's stretch: 4-bit state (at most 1.1 bytes per parameter for Adam's two states) with the
8-bit kernel's structure, if the quality target holds (final train loss within 2 % of fp32 Adam
over 3 seeds, on `quality.py`'s tasks). A kernel that decodes, updates in float32 and encodes
computes exactly what float32 Adam computes when its state is replaced, after every step, by
``decode(encode(state))``. So this script trains `quality.py`'s tasks with `adamkit.torch.Adam`
on float32 state and rounds the state of every tensor of at least
``adamkit.compact.policy.MIN_QUANTIZED_NUMEL`` elements through a simulated codec after each
step (float64 NumPy, blocks of 256 elements of the flattened tensor, one scale per block, the
block's absolute maximum ``s``). Blocks of 256 with a float32 scale hold 4-bit state in
2 x (0.5 + 4/256) = 1.03 bytes per parameter.

The codecs, each a power map of ``levels`` steps, ``x = s * t^p`` with ``t = c / levels``:

- ``int8``: the shipped maps (signed p = 2, 127 levels; unsigned p = 4, 255 levels), rounded
  to the nearest code; it checks the simulation against the real ``state_dtype="int8"``, which
  the report also runs;
- ``m4``: ``exp_avg`` signed, p = 2, 7 levels (codes -7..7);
- ``v4``: ``exp_avg_sq`` unsigned, p = 4, 15 levels without a zero (codes 1..15): a
  ``v`` decoded to 0 would make the step ``m / eps``, and the zero-free map rounds every
  ``v`` below ``s / 15^4`` up to it;

and, for comparison, one codec of another structure (``v4 rank-1 linear``: per-element scales
from row and column maxima, :class:`RankOneLinearCodec`); the power maps are rounded in one of
three ways:

- ``nearest``: the nearest code in ``t``;
- ``stochastic``: one of the two neighbouring codes, the upper one with the probability that
  makes the decoded value unbiased, ``E[x_hat] = x`` (with a seeded NumPy generator);
- ``stochastic-rsqrt`` (``v`` only): the probability that makes ``E[1/sqrt(v_hat)] =
  1/sqrt(v)``, the factor Adam's step applies.

    nice -n 19 .venv/bin/python benchmarks/quant4_feasibility.py [--tasks mlp cnn charlm]
        [--lr LR ...] [--out FILE.md]
"""

import argparse
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import char_transformer
import numpy as np
import quality
import torch

import adamkit.torch
from adamkit.compact.policy import MIN_QUANTIZED_NUMEL

BLOCK = 256
ROUNDINGS = ("nearest", "stochastic", "stochastic-rsqrt")


@dataclass(frozen=True)
class PowerCodec:
    """A block-wise power map ``x = s * (c / levels)^power`` (with the sign of ``x`` if ``signed``)."""

    levels: int
    power: int
    signed: bool
    rounding: str = "nearest"
    zero_free: bool = False

    def round_trip(self, x, generator):
        """``decode(encode(x))`` of a float32 array, as float32."""
        flat = x.reshape(-1).astype(np.float64)
        blocks = np.zeros(-(-flat.size // BLOCK) * BLOCK)
        blocks[: flat.size] = flat
        blocks = blocks.reshape(-1, BLOCK)
        magnitude = np.abs(blocks)
        scale = magnitude.max(axis=1, keepdims=True)
        t = self.levels * (magnitude / np.where(scale > 0, scale, 1)) ** (1 / self.power)
        lowest = 1 if self.zero_free else 0
        if self.rounding == "nearest":
            codes = np.clip(np.rint(t), lowest, self.levels)
        else:
            below = np.clip(np.floor(t), lowest, self.levels - 1)
            up_probability = self._up_probability(magnitude, scale, below)
            codes = below + (generator.random(blocks.shape) < up_probability)
        decoded = scale * (codes / self.levels) ** self.power
        if self.signed:
            decoded = np.copysign(decoded, blocks)
        return decoded.reshape(-1)[: flat.size].reshape(x.shape).astype(np.float32)

    def _up_probability(self, magnitude, scale, below):
        """The probability of the upper code that makes the rounding unbiased in value (or in
        the reciprocal square root, for ``stochastic-rsqrt``); 0 below the lowest code."""
        low = scale * (below / self.levels) ** self.power
        high = scale * ((below + 1) / self.levels) ** self.power
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.rounding == "stochastic-rsqrt":
                probability = (magnitude**-0.5 - low**-0.5) / (high**-0.5 - low**-0.5)
            else:
                probability = (magnitude - low) / (high - low)
        return np.clip(np.nan_to_num(probability, nan=0.0), 0.0, 1.0)


@dataclass(frozen=True)
class RankOneLinearCodec:
    """Li et al. (2023)'s 4-bit second moment, a different structure from the blocks: each
    element of a matrix (a tensor viewed as ``shape[0]`` rows) is scaled by the smaller of its
    row's and its column's maximum, ``r = min(max_row, max_col)``, and coded linearly without a
    zero, ``x = r (c + 1) / 16`` for ``c = 0..15``, to the nearest code. A 1-d tensor takes
    the maximum of its block of 256 as ``r``."""

    def round_trip(self, x, generator):
        if x.ndim < 2:
            flat = np.zeros(-(-x.size // BLOCK) * BLOCK)
            flat[: x.size] = x
            matrix = flat.reshape(-1, BLOCK)
            scale = matrix.max(axis=1, keepdims=True)
        else:
            matrix = x.reshape(x.shape[0], -1).astype(np.float64)
            scale = np.minimum(matrix.max(axis=1, keepdims=True), matrix.max(axis=0, keepdims=True))
        codes = np.clip(np.rint(16 * matrix / np.where(scale > 0, scale, 1)) - 1, 0, 15)
        decoded = scale * (codes + 1) / 16
        return decoded.reshape(-1)[: x.size].reshape(x.shape).astype(np.float32)


INT8_M = PowerCodec(127, 2, signed=True)
INT8_V = PowerCodec(255, 4, signed=False)


def m4(rounding):
    return PowerCodec(7, 2, signed=True, rounding=rounding)


def v4(rounding):
    return PowerCodec(15, 4, signed=False, rounding=rounding, zero_free=True)


# name: (exp_avg's codec, exp_avg_sq's codec), applied after every step.
SIMULATIONS = {
    "int8 (simulated)": (INT8_M, INT8_V),
    "4-bit, nearest": (m4("nearest"), v4("nearest")),
    "m4 stochastic, v int8": (m4("stochastic"), INT8_V),
    "m int8, v4 nearest": (INT8_M, v4("nearest")),
    "m int8, v4 stochastic": (INT8_M, v4("stochastic")),
    "m int8, v4 stochastic-rsqrt": (INT8_M, v4("stochastic-rsqrt")),
    "4-bit, stochastic": (m4("stochastic"), v4("stochastic")),
    "m int8, v4 rank-1 linear": (INT8_M, RankOneLinearCodec()),
    "m4 stochastic, v4 rank-1 linear": (m4("stochastic"), RankOneLinearCodec()),
}


class StateRounding:
    """While active, every ``adamkit.torch.Adam.step`` ends by rounding the state of the large
    tensors through ``codecs`` (``exp_avg``, ``exp_avg_sq``)."""

    def __init__(self):
        self.codecs = None
        self.generator = None
        self._step = adamkit.torch.Adam.step
        rounding = self

        def step(optimizer, closure=None):
            loss = rounding._step(optimizer, closure)
            if rounding.codecs is not None:
                rounding.apply(optimizer)
            return loss

        adamkit.torch.Adam.step = step

    def activate(self, codecs, seed):
        self.codecs = codecs
        self.generator = np.random.default_rng(seed)

    def apply(self, optimizer):
        with torch.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    state = optimizer.state.get(param)
                    if not state or param.numel() < MIN_QUANTIZED_NUMEL:
                        continue
                    for key, codec in zip(("exp_avg", "exp_avg_sq"), self.codecs):
                        state[key].copy_(torch.from_numpy(codec.round_trip(state[key].numpy(), self.generator)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=[*quality.DIGITS_TASKS, quality.CHAR_LM],
                        choices=[*quality.DIGITS_TASKS, quality.CHAR_LM])
    parser.add_argument("--lr", type=float, nargs="+", help="learning rates (default: each task's own)")
    parser.add_argument("--simulations", nargs="+", choices=list(SIMULATIONS), default=list(SIMULATIONS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    adamkit.kernels.set_num_threads(1)
    text = char_transformer.Text(char_transformer.corpus()) if quality.CHAR_LM in args.tasks else None
    options = argparse.Namespace(epochs=None, steps=None)
    rounding = StateRounding()
    seeds = range(3)
    report = ["```", "nice -n 19 .venv/bin/python " + shlex.join(["benchmarks/quant4_feasibility.py", *sys.argv[1:]]),
              "```", "", "Final train loss; gap of the mean over 3 seeds to fp32's mean (per seed in brackets).", ""]
    for task in args.tasks:
        for lr in args.lr or [quality.default_lr(task)]:
            rows = [f"**{task}, lr {lr:g}**", "", "| state | mean loss | gap of mean | seeds' gaps | within 2 % |",
                    "|---|---|---|---|---|"]
            runs = {"fp32": (None, quality.VARIANTS["fp32"]), "int8 (the kernel)": (None, quality.VARIANTS["int8"]),
                    **{name: (SIMULATIONS[name], quality.VARIANTS["fp32"]) for name in args.simulations}}
            losses = {}
            for name, (codecs, variant) in runs.items():
                losses[name] = []
                for seed in seeds:
                    started = time.process_time()
                    rounding.activate(codecs, seed)
                    losses[name].append(quality.final_train_loss(task, variant, seed, lr, options, text))
                    print(f"{task} lr={lr:g} {name} seed {seed}: {losses[name][-1]:.5f} "
                          f"({time.process_time() - started:.1f} CPU s)", file=sys.stderr, flush=True)
                base = losses["fp32"]
                gap = statistics.mean(losses[name]) / statistics.mean(base) - 1
                seed_gaps = " ".join(quality.percent(a / b - 1) for a, b in zip(losses[name], base))
                rows.append(f"| {name} | {statistics.mean(losses[name]):.4f} | "
                            + ("— | — | — |" if name == "fp32" else
                               f"{quality.percent(gap)} | {seed_gaps} | {'yes' if abs(gap) <= 0.02 else 'no'} |"))
            print("\n".join(rows) + "\n", flush=True)
            report += [*rows, ""]
    if args.out is not None:
        args.out.write_text("\n".join(report))


if __name__ == "__main__":
    main()
