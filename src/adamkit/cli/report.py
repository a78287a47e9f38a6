"""What ``compare`` reports: the results table (rich) and the JSON document of every number."""

import json
import math

from rich.table import Table

COLUMNS = ("optimizer", "lr", "train loss", "test acc", "seconds", "state bytes")


def row(run):
    """The table cells of one run, formatted from the same numbers the JSON holds."""
    return (
        run.optimizer,
        f"{run.hyperparameters['lr']:g}",
        f"{run.train_loss[-1]:.4g}",
        f"{run.test_accuracy[-1]:.4f}",
        f"{run.seconds:.2f}",
        f"{run.state_bytes:,}",
    )


def results_table(runs, title):
    table = Table(title=title)
    for index, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if index == 0 else "right")
    for run in runs:
        table.add_row(*row(run))
    return table


def document(config, runs, versions):
    """Everything one comparison measured, keyed by optimizer name, as JSON-ready data."""
    return {
        "config": config,
        "versions": versions,
        "results": {
            run.name: {
                "optimizer": run.optimizer,
                "hyperparameters": run.hyperparameters,
                "final_train_loss": run.train_loss[-1],
                "final_test_accuracy": run.test_accuracy[-1],
                "train_seconds": run.seconds,
                "state_bytes": run.state_bytes,
                "train_loss": run.train_loss,
                "test_accuracy": run.test_accuracy,
                "batch_loss": run.batch_loss,
            }
            for run in runs
        },
    }


def write_json(path, data):
    """Write ``data`` as strict JSON; a diverged (NaN or infinite) number is written as null."""
    path.write_text(json.dumps(_strict(data), indent=2, allow_nan=False) + "\n")


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    return value
