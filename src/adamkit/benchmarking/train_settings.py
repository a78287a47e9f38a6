"""The options of ``adamkit bench --train``, checked once, and the command line that reproduces them."""

import shlex
from dataclasses import dataclass

from adamkit.benchmarking import train_configs
from adamkit.benchmarking.settings import DEFAULT_OUT, closing_words, positive_int

FULL_STEPS, FULL_WARMUP = 200, 3
QUICK_STEPS, QUICK_WARMUP = 2, 1
SEEDS = 3


@dataclass(frozen=True)
class TrainSettings:
    """Train each of ``configs`` for ``steps`` steps with seeds 0 to ``seeds`` − 1; the first
    ``warmup`` steps of each seed are not timed. ``quick``: the tiny GPT."""

    configs: tuple[str, ...]
    steps: int
    warmup: int
    seeds: int
    threads: int | None
    quick: bool
    out: str

    def command(self):
        """The ``adamkit bench --train`` command line that reproduces this run, every option explicit."""
        words = ["adamkit", "bench", "--train", "--configs", *self.configs]
        words += ["--steps", str(self.steps), "--warmup", str(self.warmup), "--seeds", str(self.seeds)]
        return shlex.join(words + closing_words(self.threads, self.quick, self.out))


def resolve_train(*, configs=None, steps=None, warmup=None, seeds=None, threads=None, quick=False, out=None):
    """Check the options of ``adamkit bench --train`` and fill in defaults (fewer steps with
    ``quick``); bad values raise naming the option and the value."""
    if not isinstance(quick, bool):
        raise TypeError(f"--quick must be True or False, got {quick!r}")
    steps = positive_int("--steps", steps if steps is not None else QUICK_STEPS if quick else FULL_STEPS)
    warmup = warmup if warmup is not None else QUICK_WARMUP if quick else FULL_WARMUP
    if isinstance(warmup, bool) or not isinstance(warmup, int):
        raise TypeError(f"--warmup must be an integer, got {warmup!r}")
    if not 1 <= warmup < steps:
        raise ValueError(f"--warmup must be at least 1 and below --steps ({steps}), got {warmup!r}")
    out = DEFAULT_OUT if out is None else str(out)
    if not out:
        raise ValueError("--out must be a directory path, got ''")
    return TrainSettings(
        configs=_config_names(configs),
        steps=steps,
        warmup=warmup,
        seeds=positive_int("--seeds", SEEDS if seeds is None else seeds),
        threads=None if threads is None else positive_int("--threads", threads),
        quick=quick,
        out=out,
    )


def _config_names(values):
    if values is None:
        return train_configs.DEFAULT_NAMES
    chosen = set()
    for value in [values] if isinstance(values, str) else values:
        for word in str(value).split(","):
            if word.strip() not in train_configs.BY_NAME:
                raise ValueError(
                    f"--configs: unknown configuration {word.strip()!r} (choose from {', '.join(train_configs.NAMES)})"
                )
            chosen.add(word.strip())
    if not chosen:
        raise ValueError(f"--configs: no names given in {values!r}")
    return tuple(name for name in train_configs.NAMES if name in chosen)
