"""Render an ``adamkit bench --train`` record: the Markdown report and the printed table.

Both are built from the same formatted cells (each the JSON value rounded by
:func:`adamkit.benchmarking.report.figure`), one row per configuration; the JSON is written by
:func:`adamkit.benchmarking.report.write`.
"""

from adamkit.benchmarking import report
from adamkit.benchmarking.train import BASELINE, TARGETS

TITLE = "adamkit bench --train"
LABEL_COLUMNS = 2
MIB = 2**20
BYTES_COLUMNS = {
    "parameters": "params B/param",
    "gradients_peak_live": "grads (peak live) B/param",
    "optimizer_state": "state B/param",
    "persistent": "persistent B/param",
}


def headers():
    return [
        "Config",
        "Model",
        *BYTES_COLUMNS.values(),
        "peak RSS MiB",
        f"RSS / {BASELINE}",
        "ms/step",
        f"time / {BASELINE}",
        "final loss",
        f"loss vs {BASELINE}",
    ]


def rows(record):
    """One row of formatted cells per configuration that ran, matching :func:`headers`."""
    table = []
    for row in record["results"]:
        if row["error"] is not None:
            continue
        versus = row["vs_baseline"]
        loss_difference = versus.get("loss_vs_baseline")
        table.append(
            [
                row["config"],
                row["model_dtype"],
                *(report.figure(row["bytes_per_param"][key]) for key in BYTES_COLUMNS),
                report.figure(row["peak_rss_bytes"] / MIB),
                report.cell(versus.get("rss_vs_baseline"), "×"),
                report.figure(row["time"]["median_ms"]),
                report.cell(versus.get("time_vs_baseline"), "×"),
                f"{row['final_loss']:.4f}",
                report.MISSING if loss_difference is None else f"{100 * loss_difference:+.2f} %",
            ]
        )
    return table


def notes(record):
    """What each configuration is, the targets each one meets, and why any did not run."""
    lines = []
    for row in record["results"]:
        if row["error"] is not None:
            continue
        met = ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in row["targets_met"].items())
        lines.append(
            f"{row['config']}: {row['description']}; peak live gradients {row['peak_live_gradient_fraction']:.1%} "
            f"of a full set; targets: {met}"
        )
    return lines + list(record["notes"])


def method_lines(record):
    settings = record["settings"]
    first = next((row for row in record["results"] if row["error"] is None), None)
    model = "" if first is None else f"{first['parameters']:,} parameters in {first['parameter_tensors']} tensors, "
    targets = ", ".join(f"{name} ≤ {value:g}" for name, value in TARGETS.items())
    return [
        f"A byte-level GPT ({model}{'quick size' if settings['quick'] else 'full size'}) trained "
        f"{report.count(settings['steps'], 'step')} with {report.count(settings['seeds'], 'seed')}, "
        f"AdamW with {_hyperparameters(settings['hyperparameters'])}.",
        "Each configuration and seed trains in a fresh process: peak RSS is its VmHWM (imports included; "
        "the largest over the seeds). Bytes per parameter are counted from the tensors: gradients at "
        "their most alive at once, optimizer state after the last step; persistent = parameters + state.",
        f"ms/step: the median whole step (forward, backward, step, zero_grad) after {settings['warmup']} "
        "untimed steps per seed, the processes of a seed stepped one at a time in rotated rounds.",
        "Final loss: mean cross-entropy (nats/byte) on fixed evaluation windows, in float32, "
        f"averaged over the seeds. Targets: {targets}, and no full gradient set alive.",
    ]


def _hyperparameters(values):
    """``lr 0.001, betas (0.9, 0.95), ...``: the same text from the record and from its JSON."""
    return ", ".join(
        f"{name} {tuple(value) if isinstance(value, list | tuple) else value}" for name, value in values.items()
    )


def markdown(record):
    """The Markdown report: command, machine, method, the table, and notes."""
    return report.titled_markdown(TITLE, record, method_lines(record), headers(), rows(record), notes(record))


def print_table(record, console):
    """Print the table with rich on ``console``, then the notes."""
    report.print_cells(record["command"], headers(), rows(record), notes(record), console, label_columns=LABEL_COLUMNS)
