"""Time every rule against torch.optim's paths, alternating them, next to memory bandwidth.

Workloads: A (20M params in 50 tensors), B (GPT-2 small, 124M params in 148 tensors) and
C (10,000 tensors × 1,000 params). For each workload and rule, adamkit is timed against
torch.optim's for-loop, foreach and fused paths in the same run, one step of each per round;
a STREAM-style bandwidth probe runs in the same rounds. Writes bench.json and bench.md.
"""

# adamkit.cli.main registers this module through add_arguments and run; the work is done by
# adamkit.benchmarking. `python -m adamkit.cli.bench` runs it on its own.

import argparse
import sys

from adamkit.benchmarking import rule_cases, workloads
from adamkit.benchmarking.settings import DEFAULT_OUT, FULL_STEPS, FULL_WARMUP, QUICK_STEPS, QUICK_WARMUP


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
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every tensor's first dimension")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"directory for bench.json and bench.md (default {DEFAULT_OUT})")
    return parser


def run(args):
    """Run the benchmark described by the parsed ``args``; return the exit status."""
    from adamkit.benchmarking import report, runner, settings

    try:
        chosen = settings.resolve(
            workloads=args.workloads,
            rules=args.rules,
            steps=args.steps,
            warmup=args.warmup,
            threads=args.threads,
            quick=args.quick,
            scale=args.scale,
            out=args.out,
        )
    except (TypeError, ValueError) as error:
        print(f"adamkit bench: error: {error}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console()
    record = runner.run_benchmark(
        chosen,
        progress=lambda message: console.print(message, style="dim", markup=False),
        on_row=lambda partial: report.write(partial, chosen.out),
    )
    json_path, markdown_path = report.write(record, chosen.out)
    report.print_table(record, console)
    console.print(f"wrote {json_path} and {markdown_path}", markup=False, highlight=False)
    return 0


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(prog="adamkit bench", description=__doc__))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
