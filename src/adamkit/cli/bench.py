"""Time every rule against torch.optim's paths, alternating them, next to memory bandwidth.

Workloads: A (20M params in 50 tensors), B (GPT-2 small, 124M params in 148 tensors) and
C (10,000 tensors × 1,000 params). For each workload and rule, adamkit.torch and adamkit.numpy
are timed against torch.optim's for-loop, foreach and fused paths in the same run, one step of
each per round; so are a plain NumPy Adam (for Adam), adamkit.torch with state_dtype="int8"
(for the rules that take it) and, for AdamW, bitsandbytes' and torchao's AdamW8bit when they
are installed. A STREAM-style bandwidth probe runs in the same rounds. Writes bench.json and
bench.md.

With --sparse: lazy sparse Adam on a 1,000,000 × 64 embedding table with 1 % of its rows
touched per step (coalesced, and as an embedding's backward makes it), against adamkit's
dense-mode and dense Adam, torch's fused Adam and torch.optim.SparseAdam (--rows, --dim,
--fraction, --lookups-per-row).

With --train: a 25M-parameter GPT trained on the CPU by each optimizer configuration (--configs),
each in its own process, reporting peak RSS, bytes per parameter of parameters, gradients and
optimizer state, the median whole-step time and the final loss over --seeds seeds.

With --distributed: the optimizer step under DDP, ZeroRedundancyOptimizer and FSDP2 on two CPU
processes (gloo), adamkit.torch (float32 and 8-bit state) against torch.optim's for-loop and
foreach paths, in alternating rounds, with the bytes of optimizer state per rank (--rules).

With --reference: the run whose tables head BENCHMARKS.md, in one JSON: every rule on workload
A (float32, bfloat16 and 8-bit state), the sparse run, the distributed run, and the final train
loss of every optimizer that takes bfloat16 and 8-bit state, with them against float32 state,
on compare's tasks. --update FILE splices the
tables into FILE between its markers; --report-from JSON renders a record written before (any
kind), or with --update splices a reference record's tables, without running anything:

    adamkit bench --reference --out benchmarks/results/current --update BENCHMARKS.md
    adamkit bench --report-from benchmarks/results/current/bench.json --update BENCHMARKS.md
"""

# adamkit.cli.main registers this module through add_arguments and run; the work is done by
# adamkit.benchmarking. `python -m adamkit.cli.bench` runs it on its own.

import argparse
import json
import sys

from adamkit.benchmarking import rule_cases, train_configs, workloads
from adamkit.benchmarking.settings import (
    DEFAULT_OUT,
    FULL_STEPS,
    FULL_WARMUP,
    QUICK_STEPS,
    QUICK_WARMUP,
    SPARSE_FRACTION,
    SPARSE_FULL,
    SPARSE_LOOKUPS_PER_ROW,
)
from adamkit.benchmarking.train_settings import SEEDS as TRAIN_SEEDS

# The options of each kind of run, by argparse destination, with their spelling.
DENSE_ONLY = {"workloads": "--workloads", "rules": "--rules", "scale": "--scale"}
SPARSE_ONLY = {"rows": "--rows", "dim": "--dim", "fraction": "--fraction", "lookups_per_row": "--lookups-per-row"}
TRAIN_ONLY = {"configs": "--configs", "seeds": "--seeds"}
# --distributed runs one thread per process on its own model.
DISTRIBUTED_REFUSED = {"workloads": "--workloads", "scale": "--scale", "threads": "--threads"}
RUN_KINDS = {"sparse": "--sparse", "distributed": "--distributed", "reference": "--reference", "train": "--train"}
RUN_OPTIONS = {
    **DENSE_ONLY,
    **SPARSE_ONLY,
    **TRAIN_ONLY,
    "steps": "--steps",
    "warmup": "--warmup",
    "threads": "--threads",
    "quick": "--quick",
    "sparse": "--sparse",
    "reference": "--reference",
    "train": "--train",
    "distributed": "--distributed",
    "out": "--out",
}


def add_arguments(parser):
    """Add the options of ``adamkit bench`` to the argparse ``parser``."""
    parser.add_argument(
        "--workloads", nargs="+", metavar="NAME",
        help=f"workloads to time, of {', '.join(workloads.NAMES)} (default: all)",
    )
    parser.add_argument(
        "--rules", nargs="+", metavar="RULE",
        help=f"rules to time, of {', '.join(rule_cases.NAMES)} (default: all)",
    )
    parser.add_argument(
        "--steps", type=int,
        help=f"timed steps per contender; the median is reported (default {FULL_STEPS}, quick {QUICK_STEPS})",
    )
    parser.add_argument(
        "--warmup", type=int,
        help=f"untimed steps first, at least 1 (default {FULL_WARMUP}, quick {QUICK_WARMUP})",
    )
    parser.add_argument("--threads", type=int, help="intra-op threads for torch and adamkit (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny workloads and few steps, for smoke tests")
    parser.add_argument("--scale", type=float, help="multiply every tensor's first dimension (default 1)")
    parser.add_argument("--sparse", action="store_true", help="time lazy sparse Adam on an embedding table instead")
    parser.add_argument("--rows", type=int, help=f"--sparse: rows of the table (default {SPARSE_FULL['rows']:,})")
    parser.add_argument("--dim", type=int, help=f"--sparse: columns of the table (default {SPARSE_FULL['dim']})")
    parser.add_argument(
        "--fraction", type=float, help=f"--sparse: fraction of rows touched per step (default {SPARSE_FRACTION})"
    )
    parser.add_argument(
        "--lookups-per-row", type=int,
        help=f"--sparse: embedding lookups per touched row (default {SPARSE_LOOKUPS_PER_ROW})",
    )
    parser.add_argument(
        "--train", action="store_true", help="train a GPT per optimizer configuration: memory, step time, loss"
    )
    parser.add_argument(
        "--configs", nargs="+", metavar="NAME",
        help=f"--train: configurations, of {', '.join(train_configs.NAMES)} (default: {', '.join(train_configs.DEFAULT_NAMES)})",
    )
    parser.add_argument("--seeds", type=int, help=f"--train: seeds per configuration (default {TRAIN_SEEDS})")
    parser.add_argument(
        "--distributed", action="store_true",
        help="time the step under DDP, ZeRO and FSDP2 on two gloo processes instead (--rules, --steps, --warmup)",
    )
    parser.add_argument(
        "--reference", action="store_true",
        help="the run BENCHMARKS.md's tables come from: every rule on workload A, compact state, its quality, sparse",
    )
    parser.add_argument("--out", help=f"directory for bench.json and bench.md (default {DEFAULT_OUT})")
    parser.add_argument(
        "--update", metavar="FILE",
        help="--reference or --report-from: splice the reference tables into FILE between its markers",
    )
    parser.add_argument(
        "--report-from", metavar="JSON",
        help="render the bench.json of an earlier run (print it, or splice it with --update) instead of running",
    )
    return parser


def run(args):
    """Run the benchmark described by the parsed ``args``, or render a record with
    ``--report-from``; return the exit status."""
    try:
        if args.report_from is not None:
            return _report_from(args)
        chosen = resolve_settings(args)
    except (OSError, TypeError, ValueError) as error:
        print(f"adamkit bench: error: {error}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console()
    if args.sparse:
        return _run_sparse(chosen, console)
    if args.train:
        return _run_train(chosen, console)
    if args.distributed:
        return _run_distributed(chosen, console)
    if args.reference:
        return _run_reference(chosen, console, args.update)
    return _run_rules(chosen, console)


def resolve_settings(args):
    """The checked settings of the run the parsed ``args`` ask for; options of the other kind of
    run raise ``ValueError``."""
    from adamkit.benchmarking import settings

    common = dict(steps=args.steps, warmup=args.warmup, threads=args.threads, quick=args.quick, out=args.out)
    kinds = [spelling for name, spelling in RUN_KINDS.items() if getattr(args, name)]
    if len(kinds) > 1:
        raise ValueError(f"{' and '.join(kinds)} are different runs: give one of them")
    if args.update is not None and not args.reference:
        raise ValueError("--update is an option of --reference and --report-from only")
    if not args.train:
        _refuse(args, TRAIN_ONLY, "is an option of --train only")
    if args.train:
        from adamkit.benchmarking import train_settings

        _refuse(args, {**DENSE_ONLY, **SPARSE_ONLY}, "is not an option of --train")
        return train_settings.resolve_train(configs=args.configs, seeds=args.seeds, **common)
    if args.reference:
        _refuse(args, {**DENSE_ONLY, **SPARSE_ONLY}, "is not an option of --reference")
    elif args.sparse:
        _refuse(args, DENSE_ONLY, "is not an option of --sparse")
    elif args.distributed:
        _refuse(args, {**DISTRIBUTED_REFUSED, **SPARSE_ONLY}, "is not an option of --distributed")
    else:
        _refuse(args, SPARSE_ONLY, "is an option of --sparse only")
    if args.reference:
        if args.update is not None:
            from adamkit.benchmarking import reference_report

            reference_report.read_page(args.update)  # the markers are there before the run
        return settings.resolve_reference(**common)
    if args.distributed:
        return settings.resolve_distributed(
            rules=args.rules, steps=args.steps, warmup=args.warmup, quick=args.quick, out=args.out
        )
    if args.sparse:
        return settings.resolve_sparse(
            rows=args.rows, dim=args.dim, fraction=args.fraction, lookups_per_row=args.lookups_per_row, **common
        )
    scale = 1.0 if args.scale is None else args.scale
    return settings.resolve(workloads=args.workloads, rules=args.rules, scale=scale, **common)


def _refuse(args, options, reason):
    """Raise ``ValueError`` naming the first of ``options`` given in ``args``."""
    for name, spelling in options.items():
        value = getattr(args, name)
        if value is not None and value is not False:
            raise ValueError(f"{spelling} {reason}")


def _report_from(args):
    """Print the Markdown report of the record in ``args.report_from``, or splice it into
    ``args.update``; return the exit status."""
    from adamkit.benchmarking import reference, reference_report

    _refuse(args, RUN_OPTIONS, "is not an option of --report-from")
    with open(args.report_from) as file:
        record = json.load(file)
    if args.update is None:
        print(_markdown(record), end="")
        return 0
    if not reference.is_reference(record):
        raise ValueError(
            f"--update needs the record of adamkit bench --reference; {args.report_from} holds {record['command']!r}"
        )
    reference_report.update(args.update, record)
    print(f"updated {args.update} from {args.report_from}")
    return 0


def _markdown(record):
    """The Markdown report of ``record``, rendered for its kind of run."""
    from adamkit.benchmarking import (
        distributed,
        distributed_report,
        reference,
        reference_report,
        report,
        sparse_report,
        train_report,
    )

    if reference.is_reference(record):
        return reference_report.markdown(record)
    if distributed.is_distributed(record):
        return distributed_report.markdown(record)
    if "rows" in record["settings"]:
        return sparse_report.markdown(record)
    if "configs" in record["settings"]:
        return train_report.markdown(record)
    return report.markdown(record)


def _run_reference(chosen, console, update):
    from adamkit.benchmarking import reference, reference_report

    record = reference.run_reference(chosen, progress=_progress(console))
    status = _report(record, chosen.out, console, reference_report.markdown, reference_report.print_table)
    if update is not None:
        reference_report.update(update, record)
        console.print(f"updated {update}", markup=False, highlight=False)
    return status


def _run_distributed(chosen, console):
    from adamkit.benchmarking import distributed, distributed_report

    record = distributed.run_distributed(chosen, progress=_progress(console))
    return _report(record, chosen.out, console, distributed_report.markdown, distributed_report.print_table)


def _run_sparse(chosen, console):
    from adamkit.benchmarking import sparse, sparse_report

    record = sparse.run_sparse_benchmark(chosen, progress=_progress(console))
    return _report(record, chosen.out, console, sparse_report.markdown, sparse_report.print_table)


def _run_train(chosen, console):
    from adamkit.benchmarking import train, train_report

    record = train.run_train_benchmark(chosen, progress=_progress(console))
    return _report(record, chosen.out, console, train_report.markdown, train_report.print_table)


def _run_rules(chosen, console):
    from adamkit.benchmarking import report, runner

    record = runner.run_benchmark(
        chosen, progress=_progress(console), on_row=lambda partial: report.write(partial, chosen.out)
    )
    return _report(record, chosen.out, console, report.markdown, report.print_table)


def _progress(console):
    return lambda message: console.print(message, style="dim", markup=False)


def _report(record, out, console, render, print_table):
    """Write the JSON and Markdown reports, print the table; return the exit status."""
    from adamkit.benchmarking import report

    json_path, markdown_path = report.write(record, out, render=render)
    print_table(record, console)
    console.print(f"wrote {json_path} and {markdown_path}", markup=False, highlight=False)
    return 0


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(prog="adamkit bench", description=__doc__))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
