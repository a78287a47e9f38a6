"""What importing adamkit costs: ``import torch`` alone against ``import torch; import
adamkit.torch``, and ``import numpy`` alone against ``import adamkit`` (which needs NumPy only).

    .venv/bin/python benchmarks/import_cost.py [--repeats N]

Each case runs in a fresh interpreter, which times its statements themselves (interpreter
start-up left out). The cases alternate within each round, so that a change in the machine's
load hits them alike; the first round warms the page cache (and writes the bytecode cache, which
the imports then read, as after an install) and is not counted. Prints Markdown
tables: each case's median, and what each adamkit import adds, both as the difference of two
cases' medians and as the median of its own time right after torch (or NumPy) in the same
process; the second has far less noise on a loaded machine, where ``import torch`` alone
varies by seconds. The load average before and after heads the tables.
"""

import argparse
import os
import statistics
import subprocess
import sys

# Each case's statements, timed one by one in the same fresh interpreter.
CASES = {
    "torch alone": ["import torch"],
    "torch, then adamkit.torch": ["import torch", "import adamkit.torch"],
    "numpy alone": ["import numpy"],
    "numpy, then adamkit": ["import numpy", "import adamkit"],
}
# What adamkit adds: (the case with it, the case without it).
ADDED = {"adamkit.torch": ("torch, then adamkit.torch", "torch alone"), "adamkit": ("numpy, then adamkit", "numpy alone")}
# Imports read cached bytecode, as they do after ``pip install`` (which compiles it): without
# it (PYTHONDONTWRITEBYTECODE set, no __pycache__) every import compiles adamkit's sources.
BYTECODE_CACHED = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
TIMER = "import time\nclock = time.perf_counter\n"
TIMED = "start = clock()\n{statement}\nprint(clock() - start)\n"


def time_statements(statements):
    """Seconds a fresh interpreter takes to run each of ``statements``, in order."""
    program = TIMER + "".join(TIMED.format(statement=statement) for statement in statements)
    completed = subprocess.run(
        [sys.executable, "-c", program], env=BYTECODE_CACHED, capture_output=True, text=True, check=True
    )
    return [float(line) for line in completed.stdout.split()]


def measure(repeats):
    """Every case's per-statement times over ``repeats`` rounds, after one uncounted warm-up round."""
    times = {case: [] for case in CASES}
    for round_index in range(repeats + 1):
        for case, statements in CASES.items():
            seconds = time_statements(statements)
            if round_index:
                times[case].append(seconds)
    return times


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(times, load_before, load_after):
    totals = {case: [sum(run) for run in runs] for case, runs in times.items()}
    medians = {case: statistics.median(values) for case, values in totals.items()}
    lines = [
        f"{len(totals['torch alone'])} rounds; load average (1, 5, 15 min) {load_before} before, {load_after} after",
        "",
        "| case | median (s) | fastest (s) | slowest (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {case} | {medians[case]:.3f} | {min(values):.3f} | {max(values):.3f} |" for case, values in totals.items()]
    lines += [
        "",
        "| import | added: difference of the cases' medians (s) | its own time after the other, same process: median (s) |",
        "|---|---|---|",
    ]
    for name, (with_it, without_it) in ADDED.items():
        own = statistics.median(run[-1] for run in times[with_it])
        lines.append(f"| `{name}` | {medians[with_it] - medians[without_it]:+.3f} | {own:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="counted rounds (default 15)")
    arguments = parser.parse_args()
    load_before = load_average()
    times = measure(arguments.repeats)
    print(report(times, load_before, load_average()))


if __name__ == "__main__":
    main()
