"""What ``compare`` reports: the results table (rich) and the JSON document of every number."""

import json
import math

COLUMNS = ("optimizer", "lr", "train loss", "test acc", "loss AUC", "seconds", "state bytes")


def row(summary):
    """The table cells of one optimizer, formatted from the same numbers the JSON holds."""
    return (
        summary.label,
        f"{summary.hyperparameters['lr']:g}",
        f"{summary.final_train_loss:.4g}",
        f"{summary.final_test_accuracy:.4f}",
        f"{summary.loss_area:.4g}",
        f"{summary.seconds:.2f}",
        f"{summary.state_bytes:,}",
    )


def results_table(summaries, title):
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(COLUMNS):
        # The labels are never cut; on a narrow terminal the headers wrap instead.
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    for summary in summaries:
        table.add_row(*row(summary))
    return table


def document(config, summaries, versions):
    """Everything one comparison measured, keyed by optimizer name, as JSON-ready data.

    The ``final_*``, ``loss_area`` and ``train_seconds`` of an optimizer are means over its
    seeds; ``seeds`` holds each run's curves and numbers.
    """
    return {
        "config": config,
        "versions": versions,
        "results": {
            summary.name: {
                "label": summary.label,
                "optimizer": summary.optimizer,
                "hyperparameters": summary.hyperparameters,
                "final_train_loss": summary.final_train_loss,
                "final_test_accuracy": summary.final_test_accuracy,
                "loss_area": summary.loss_area,
                "train_seconds": summary.seconds,
                "state_bytes": summary.state_bytes,
                "seeds": [_run(run) for run in summary.runs],
            }
            for summary in summaries
        },
    }


def write_json(path, data, indent=2):
    """Write ``data`` as strict JSON; a diverged (NaN or infinite) number is written as null."""
    path.write_text(json.dumps(_strict(data), indent=indent, allow_nan=False) + "\n")


def _run(run):
    return {
        "seed": run.seed,
        "final_train_loss": run.train_loss[-1],
        "final_test_accuracy": run.test_accuracy[-1],
        "loss_area": run.loss_area,
        "train_seconds": run.seconds,
        "state_bytes": run.state_bytes,
        "train_loss": run.train_loss,
        "test_accuracy": run.test_accuracy,
        "batch_loss": run.batch_loss,
        "diagnostics": run.diagnostics,
    }


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value
