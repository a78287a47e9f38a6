"""The options of a benchmark run, checked once, and the command line that reproduces them.

:class:`Settings` is a run over workloads and rules; :class:`SparseSettings` is a run of
``adamkit bench --sparse`` (:mod:`adamkit.benchmarking.sparse`).
"""

import math
import shlex
from dataclasses import dataclass

from adamkit.benchmarking import bandwidth, rule_cases
from adamkit.benchmarking import workloads as workload_table

FULL_STEPS, FULL_WARMUP = 15, 3
QUICK_STEPS, QUICK_WARMUP = 3, 1
DEFAULT_OUT = "bench-results"


@dataclass(frozen=True)
class Settings:
    workloads: tuple[str, ...]
    rules: tuple[str, ...]
    steps: int
    warmup: int
    threads: int | None
    quick: bool
    scale: float
    out: str

    def workload_list(self):
        return workload_table.select(self.workloads, quick=self.quick, scale=self.scale)

    def rule_list(self):
        return [rule_cases.BY_NAME[name] for name in self.rules]

    @property
    def triad_elements(self):
        return bandwidth.QUICK_ELEMENTS if self.quick else bandwidth.FULL_ELEMENTS

    def command(self):
        """The ``adamkit bench`` command line that reproduces this run, every option explicit."""
        words = ["adamkit", "bench", "--workloads", *self.workloads, "--rules", *self.rules]
        words += ["--steps", str(self.steps), "--warmup", str(self.warmup)]
        if self.threads is not None:
            words += ["--threads", str(self.threads)]
        if self.quick:
            words.append("--quick")
        if self.scale != 1:
            words += ["--scale", f"{self.scale:g}"]
        words += ["--out", self.out]
        return shlex.join(words)


def resolve(*, workloads=None, rules=None, steps=None, warmup=None, threads=None, quick=False, scale=1.0, out=None):
    """Check the options and fill in defaults; bad values raise naming the option and value.

    ``workloads`` and ``rules`` are names (case-insensitive, commas allowed: ``["A,C"]``);
    ``None`` means all. They are kept in canonical order.
    """
    if not isinstance(quick, bool):
        raise TypeError(f"--quick must be True or False, got {quick!r}")
    steps = positive_int("--steps", steps if steps is not None else QUICK_STEPS if quick else FULL_STEPS)
    warmup = positive_int("--warmup", warmup if warmup is not None else QUICK_WARMUP if quick else FULL_WARMUP)
    if threads is not None:
        threads = positive_int("--threads", threads)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"--scale must be a number, got {scale!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"--scale must be a finite number > 0, got {scale!r}")
    out = DEFAULT_OUT if out is None else str(out)
    if not out:
        raise ValueError("--out must be a directory path, got ''")
    return Settings(
        workloads=_names("--workloads", workloads, workload_table.NAMES),
        rules=_names("--rules", rules, rule_cases.NAMES),
        steps=steps,
        warmup=warmup,
        threads=threads,
        quick=quick,
        scale=float(scale),
        out=out,
    )


def positive_int(option, value):
    """``value``, which must be an integer >= 1; the errors name the command-line ``option``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{option} must be at least 1, got {value!r}")
    return value


def _names(option, values, known):
    if values is None:
        return tuple(known)
    if isinstance(values, str):
        values = [values]
    by_lower = {name.lower(): name for name in known}
    chosen = set()
    for value in values:
        for word in str(value).split(","):
            name = by_lower.get(word.strip().lower())
            if name is None:
                raise ValueError(f"{option}: unknown name {word.strip()!r} (choose from {', '.join(known)})")
            chosen.add(name)
    if not chosen:
        raise ValueError(f"{option}: no names given in {values!r}")
    return tuple(name for name in known if name in chosen)


SPARSE_FULL = dict(rows=1_000_000, dim=64)
SPARSE_QUICK = dict(rows=5_000, dim=17)
SPARSE_FRACTION = 0.01
SPARSE_LOOKUPS_PER_ROW = 2


@dataclass(frozen=True)
class SparseSettings:
    """A table of ``rows × dim`` fp32; each step touches ``fraction`` of its rows, through
    ``lookups_per_row`` lookups per touched row in the embedding-backward gradient."""

    rows: int
    dim: int
    fraction: float
    lookups_per_row: int
    steps: int
    warmup: int
    threads: int | None
    quick: bool
    out: str

    @property
    def touched(self):
        """The distinct rows each step's gradient holds."""
        return max(1, round(self.rows * self.fraction))

    def command(self):
        """The ``adamkit bench --sparse`` command line that reproduces this run, every option explicit."""
        words = ["adamkit", "bench", "--sparse", "--rows", str(self.rows), "--dim", str(self.dim)]
        words += ["--fraction", f"{self.fraction:g}", "--lookups-per-row", str(self.lookups_per_row)]
        words += ["--steps", str(self.steps), "--warmup", str(self.warmup)]
        return shlex.join(words + closing_words(self.threads, self.quick, self.out))


def closing_words(threads, quick, out):
    """The last words of a run's command line: ``--threads``, ``--quick`` when given, ``--out``."""
    words = [] if threads is None else ["--threads", str(threads)]
    return words + (["--quick"] if quick else []) + ["--out", out]


def resolve_sparse(
    *, rows=None, dim=None, fraction=None, lookups_per_row=None, steps=None, warmup=None, threads=None, quick=False, out=None
):
    """Check the options of ``adamkit bench --sparse`` and fill in defaults (smaller with ``quick``)."""
    common = resolve(workloads=None, rules=None, steps=steps, warmup=warmup, threads=threads, quick=quick, out=out)
    sizes = SPARSE_QUICK if quick else SPARSE_FULL
    rows = positive_int("--rows", sizes["rows"] if rows is None else rows)
    dim = positive_int("--dim", sizes["dim"] if dim is None else dim)
    fraction = SPARSE_FRACTION if fraction is None else fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise TypeError(f"--fraction must be a number, got {fraction!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"--fraction must be in (0, 1], got {fraction!r}")
    lookups_per_row = positive_int(
        "--lookups-per-row", SPARSE_LOOKUPS_PER_ROW if lookups_per_row is None else lookups_per_row
    )
    return SparseSettings(
        rows=rows,
        dim=dim,
        fraction=float(fraction),
        lookups_per_row=lookups_per_row,
        steps=common.steps,
        warmup=common.warmup,
        threads=common.threads,
        quick=quick,
        out=common.out,
    )


DISTRIBUTED_FULL = dict(width=1024, depth=4)
DISTRIBUTED_QUICK = dict(width=64, depth=2)
DISTRIBUTED_QUICK_RULES = ("Adam", "Adafactor", "Lion")  # in the canonical order of the benched rules


@dataclass(frozen=True)
class DistributedSettings:
    """``adamkit bench --distributed``: ``rules`` under each of ``wrappers``, on an MLP of
    ``depth`` square layers of ``width`` (:mod:`adamkit.benchmarking.distributed`)."""

    rules: tuple[str, ...]
    wrappers: tuple[str, ...]
    width: int
    depth: int
    steps: int
    warmup: int
    quick: bool
    out: str

    @property
    def n_params(self):
        return self.depth * (self.width + 1) * self.width

    def rule_list(self):
        from adamkit.benchmarking import distributed

        return [distributed.BY_NAME[name] for name in self.rules]

    def command(self):
        """The ``adamkit bench --distributed`` command line that reproduces this run, every option explicit."""
        words = ["adamkit", "bench", "--distributed", "--rules", *self.rules]
        words += ["--steps", str(self.steps), "--warmup", str(self.warmup)]
        if self.quick:
            words.append("--quick")
        words += ["--out", self.out]
        return shlex.join(words)


def resolve_distributed(*, rules=None, steps=None, warmup=None, quick=False, out=None):
    """Check the options of ``adamkit bench --distributed`` and fill in defaults (smaller with ``quick``:
    ``DISTRIBUTED_QUICK_RULES`` unless ``rules`` are given)."""
    from adamkit.benchmarking import distributed

    common = resolve(workloads=None, rules=None, steps=steps, warmup=warmup, quick=quick, out=out)
    if rules is None and quick:
        rules = DISTRIBUTED_QUICK_RULES
    return DistributedSettings(
        rules=_names("--rules", rules, distributed.NAMES),
        wrappers=distributed.WRAPPERS,
        steps=common.steps,
        warmup=common.warmup,
        quick=quick,
        out=common.out,
        **(DISTRIBUTED_QUICK if quick else DISTRIBUTED_FULL),
    )


QUALITY_FULL = dict(tasks=("mlp", "cnn"), every_optimizer_on=("mlp",), seeds=3, epochs=None)
QUALITY_QUICK = dict(tasks=("mlp",), every_optimizer_on=(), seeds=1, epochs=1)
REFERENCE_WORKLOADS = ("A",)


@dataclass(frozen=True)
class QualitySettings:
    """Train ``tasks`` (of ``adamkit compare``) with seeds 0 to ``seeds`` − 1, for ``epochs``
    epochs (``None``: each task's own): on the tasks of ``every_optimizer_on`` every optimizer
    that takes compact state, on the others the first of them (Adam)."""

    tasks: tuple[str, ...]
    every_optimizer_on: tuple[str, ...]
    seeds: int
    epochs: int | None

    def epochs_of(self, task):
        from adamkit.compare.tasks import TASKS

        return TASKS[task].epochs if self.epochs is None else self.epochs

    def optimizers_of(self, task):
        """The names in ``adamkit compare`` of the optimizers trained on ``task``."""
        from adamkit.benchmarking import quality

        return quality.OPTIMIZERS if task in self.every_optimizer_on else (quality.FIRST,)


@dataclass(frozen=True)
class ReferenceSettings:
    """``adamkit bench --reference``: the run BENCHMARKS.md's table comes from. Its parts are
    the runs their own settings describe, with this run's steps, warm-up, threads and size."""

    dense: Settings
    sparse: SparseSettings
    quality: QualitySettings
    distributed: DistributedSettings

    @property
    def out(self):
        return self.dense.out

    def command(self):
        """The ``adamkit bench --reference`` command line that reproduces this run, every option explicit."""
        words = ["adamkit", "bench", "--reference"]
        words += ["--steps", str(self.dense.steps), "--warmup", str(self.dense.warmup)]
        if self.dense.threads is not None:
            words += ["--threads", str(self.dense.threads)]
        if self.dense.quick:
            words.append("--quick")
        words += ["--out", self.out]
        return shlex.join(words)


def resolve_reference(*, steps=None, warmup=None, threads=None, quick=False, out=None):
    """Check the options of ``adamkit bench --reference`` and fill in defaults (smaller with ``quick``):
    every rule on workload A, the sparse benchmark at its default size, the quality runs and the
    distributed run."""
    common = dict(steps=steps, warmup=warmup, threads=threads, quick=quick, out=out)
    return ReferenceSettings(
        dense=resolve(workloads=REFERENCE_WORKLOADS, **common),
        sparse=resolve_sparse(**common),
        quality=QualitySettings(**(QUALITY_QUICK if quick else QUALITY_FULL)),
        distributed=resolve_distributed(steps=steps, warmup=warmup, quick=quick, out=out),
    )
