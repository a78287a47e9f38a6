"""Render an ``adamkit bench --sparse`` record: the Markdown report and the printed table.

Both are built from the same formatted cells (each the JSON value rounded by
:func:`adamkit.benchmarking.report.figure`), one row per gradient; the JSON is written by
:func:`adamkit.benchmarking.report.write`.
"""

from adamkit.benchmarking import report
from adamkit.benchmarking.sparse import LABELS, RATIOS, TARGETS

TITLE = "adamkit bench --sparse"
LABEL_COLUMNS = 2


def headers():
    return ["Gradient", "entries/step", *(f"{label} ms" for label in LABELS), *(name for name, _, _ in RATIOS)]


def rows(record):
    """One row of formatted cells per gradient, matching :func:`headers`."""
    table = []
    for row in record["results"]:
        times = [report.figure(row["contenders"][label]["median_ms"]) for label in LABELS]
        ratios = [report.figure(row["ratios"][name]) + "×" for name, _, _ in RATIOS]
        table.append([row["gradient"], f"{row['entries_per_step']:,}", *times, *ratios])
    return table


def notes(record):
    """What each gradient was, whether the targets were met, and lazy Adam's agreement with SparseAdam."""
    lines = []
    for row in record["results"]:
        met = ", ".join(
            f"{name} ≥ {report.figure(target)}: {'met' if row['targets_met'][name] else 'NOT met'}"
            for name, target in TARGETS.items()
        )
        lines.append(
            f"{row['gradient']}: {row['description']}; {met}; lazy Adam (eps_hat) vs SparseAdam, "
            f"max |difference| / max |param| = {row['lazy_vs_sparse_adam_max_relative_difference']:.2g}"
        )
    return lines


def method_lines(record):
    """How the run was made and how to read its ratios, one sentence group per line."""
    settings = record["settings"]
    return [
        f"A {settings['rows']:,} × {settings['dim']} fp32 table; each step's gradient touches "
        f"{settings['touched_rows']:,} rows ({settings['fraction']:.2%}), fresh rows every step. "
        f"The embedding-backward gradient holds {settings['lookups_per_row']} lookups per touched row.",
        f"Each time is the median ms/step over {report.count(settings['steps'], 'timed step')} after "
        f"{report.count(settings['warmup'], 'warm-up step')}; in every round each contender takes one "
        "step (round-robin, the starting contender rotating).",
        "Ratios are a contender's median over lazy Adam's: above 1 means lazy Adam is faster. "
        "The dense contenders step the whole table on a dense gradient.",
    ]


def markdown(record):
    """The Markdown report: command, machine, method, the table, and notes."""
    return report.titled_markdown(TITLE, record, method_lines(record), headers(), rows(record), notes(record))


def print_table(record, console):
    """Print the table with rich on ``console``, then the notes."""
    report.print_cells(record["command"], headers(), rows(record), notes(record), console, label_columns=LABEL_COLUMNS)
