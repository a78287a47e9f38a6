"""Render a benchmark record: JSON (everything, raw timings included), a Markdown table for
``BENCHMARKS.md``, and the same table printed with rich.

The Markdown and the printed table are built from the same formatted cells, so they show the
same numbers, each the JSON value rounded by :func:`figure`.
"""

import json
from pathlib import Path

from adamkit.benchmarking import contenders

JSON_NAME = "bench.json"
MARKDOWN_NAME = "bench.md"
MISSING = "—"
SPEEDUP_HEADER = "torch best / adamkit"
PCT_HEADER = "adamkit % of bound"
NUMPY_SPEEDUP_HEADER = "plain NumPy / adamkit.numpy"
INT8_HEADER = "adamkit int8 / torch fused"


def figure(value):
    """A number with three significant digits, without exponent for the ranges we print."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(value, suffix=""):
    """``value`` rounded by :func:`figure`, with ``suffix``; a dash for a missing value."""
    return MISSING if value is None else figure(value) + suffix


def contender_columns(record):
    """The contenders timed in any row, in the canonical order of ``contenders.LABELS``."""
    present = {label for row in record["results"] for label in row["contenders"]}
    return [label for label in contenders.LABELS if label in present]


def eight_bit_columns(record):
    """The other 8-bit optimizers timed in any row, in the order of ``contenders.EIGHT_BIT``."""
    present = {label for row in record["results"] for label in row.get("int8_speedup_vs", {})}
    return [label for label in contenders.EIGHT_BIT if label in present]


def headers(record):
    columns = [f"{label} ms" for label in contender_columns(record)]
    eight_bit = [f"{label} / adamkit int8" for label in eight_bit_columns(record)]
    return [
        "Workload",
        "Rule",
        *columns,
        SPEEDUP_HEADER,
        PCT_HEADER,
        NUMPY_SPEEDUP_HEADER,
        INT8_HEADER,
        *eight_bit,
        "bound ms",
        "bound GB/s",
    ]


def rows(record):
    """One row of formatted cells per workload × rule, matching :func:`headers`."""
    labels = contender_columns(record)
    eight_bit = eight_bit_columns(record)
    table = []
    for row in record["results"]:
        times = [cell(row["contenders"].get(label, {}).get("median_ms")) for label in labels]
        speedups = row.get("int8_speedup_vs", {})
        table.append(
            [
                row["workload"],
                row["rule"],
                *times,
                cell(row["speedup_vs_torch_best"], "×"),
                cell(row["adamkit_pct_of_bound"], "%"),
                cell(row["numpy_speedup_vs_plain"], "×"),
                cell(row.get("int8_time_vs_torch_fused"), "×"),
                *(cell(speedups.get(label), "×") for label in eight_bit),
                cell(row["bound_ms"]),
                cell(row["bound_gb_per_s"]),
            ]
        )
    return table


def notes(record):
    """Every distinct note of the run, each with the workload × rule rows it applies to."""
    where = {}
    for row in record["results"]:
        for note in row["notes"]:
            where.setdefault(note, []).append(f"{row['workload']}/{row['rule']}")
    return [f"{note} ({', '.join(places)})" for note, places in where.items()]


def _kernels(machine):
    kernels = machine["adamkit_kernels"]
    if kernels["native"]:
        return f"C kernels ({'/'.join(kernels['isas'])})"
    return "reference backend (C kernels not built)"


def machine_line(record):
    machine = record["machine"]
    threads = record["settings"]["threads"]
    return (
        f"{machine['cpu_model']}, {machine['logical_cores']} logical cores, "
        f"SIMD {'/'.join(machine['simd']) or 'none'}; torch {machine['torch']} "
        f"({count(threads['torch'], 'thread')}), numpy {machine['numpy']}, adamkit {machine['adamkit']} "
        f"with {_kernels(machine)}, "
        f"Python {machine['python']}{_environment(machine)}"
    )


def _environment(machine):
    settings = machine.get("environment", {})
    return "".join(f", {name}={value}" for name, value in settings.items())


def _loads(averages):
    return "(" + ", ".join(f"{value:.2f}" for value in averages) + ")"


def load_line(record):
    start = f"Load average (1, 5, 15 min) at the start {_loads(record['load_average_start'])}"
    if record["finished"] is None:
        return f"**Incomplete run: the rows timed so far.** {start}."
    return (
        f"{start}, at the end {_loads(record['load_average_end'])}; this run alone adds about 1, "
        "more means other processes shared the cores."
    )


def count(number, noun):
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _method_lines(record):
    settings = record["settings"]
    bytes_per_param = ", ".join(f"{rule} {size}" for rule, size in record["bytes_per_param"].items())
    return [
        f"Each time is the median ms/step over {count(settings['steps'], 'timed step')} after "
        f"{count(settings['warmup'], 'warm-up step')}. In every round each contender takes one step "
        "(round-robin, the starting contender rotating), next to the bandwidth probes.",
        f"`{SPEEDUP_HEADER}`: the fastest torch.optim path's time over adamkit.torch's; "
        "above 1 means adamkit is faster.",
        f"`{INT8_HEADER}`: adamkit.torch with `state_dtype=\"int8\"` (8-bit block-wise state), its "
        "time over torch's fused fp32 step; below 1 means the 8-bit step is faster. "
        "`<8-bit optimizer> / adamkit int8`: that optimizer's time over adamkit's 8-bit step.",
        f"`{PCT_HEADER}`: the bound time (bytes per parameter × parameters ÷ bandwidth) over "
        "adamkit.torch's time. Bandwidth is the faster of a STREAM triad `a = b + s·c` "
        "(counted with write-allocate, 16 B/element) and `a += s·b` (12 B/element), measured "
        "in the same rounds as that row, on fp32 arrays of "
        f"{settings['bandwidth_probe_elements']:,} elements.",
        f"Bytes per parameter (fp32; read param, grad, state; write param, state): {bytes_per_param}.",
    ]


def markdown(record):
    """The Markdown report: command, machine, method, the table, and notes."""
    return titled_markdown("adamkit bench", record, _method_lines(record), headers(record), rows(record), notes(record))


def markdown_table(table_headers, table_rows):
    """The lines of a Markdown table."""
    lines = ["| " + " | ".join(table_headers) + " |", "|" + "|".join("---" for _ in table_headers) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in table_rows]


def titled_markdown(title, record, method, table_headers, table_rows, table_notes):
    """A Markdown report: ``title``, the command, machine and load, the ``method`` lines, the
    table and its notes (when there are any)."""
    lines = [
        f"# {title}",
        "",
        "```",
        record["command"],
        "```",
        "",
        f"Run {record['started']}. Machine: {machine_line(record)}.",
    ]
    lines += ["", load_line(record), "", *method, "", *markdown_table(table_headers, table_rows)]
    if table_notes:
        lines += ["", "Notes:", *(f"- {note}" for note in table_notes)]
    return "\n".join(lines) + "\n"


def write(record, out_dir, render=markdown):
    """Write the JSON and the Markdown (``render(record)``) into ``out_dir``; return their paths."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    markdown_path = directory / MARKDOWN_NAME
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    markdown_path.write_text(render(record))
    return json_path, markdown_path


def print_table(record, console):
    """Print the table with rich on ``console``, never truncating a cell, then the notes."""
    print_cells(record["command"], headers(record), rows(record), notes(record), console, label_columns=2)


def print_cells(title, table_headers, table_rows, table_notes, console, *, label_columns):
    """Print a table of formatted cells titled ``title`` (its first ``label_columns`` columns
    left-aligned, the figures right-aligned), never truncating a cell, then the notes."""
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for index, header in enumerate(table_headers):
        table.add_column(header, justify="left" if index < label_columns else "right", no_wrap=True)
    for cells in table_rows:
        table.add_row(*(Text(cell) for cell in cells))
    needed = Measurement.get(console, console.options.update(width=100_000), table).maximum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(table)
    finally:
        console.width = width
    for note in table_notes:
        console.print(f"note: {note}", markup=False, highlight=False)
