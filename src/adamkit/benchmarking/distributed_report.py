"""Render an ``adamkit bench --distributed`` record: the Markdown report and the printed table.

Both are built from the same formatted cells (each the JSON value rounded by
:func:`adamkit.benchmarking.report.figure`), one row per wrapper and rule.
"""

from adamkit.benchmarking import report
from adamkit.benchmarking.distributed_worker import LABELS

TITLE = "adamkit bench --distributed"
LABEL_COLUMNS = 2
MIB = 2**20


def _columns(record):
    present = {label for row in record["results"] for label in row["contenders"]}
    return [label for label in LABELS if label in present]


def headers(record):
    labels = _columns(record)
    return [
        "Wrapper",
        "Rule",
        *(f"{label} ms" for label in labels),
        report.SPEEDUP_HEADER,
        "int8 / adamkit",
        *(f"{label} state MiB per rank" for label in labels),
    ]


def rows(record):
    """One row of formatted cells per wrapper and rule, matching :func:`headers`."""
    labels = _columns(record)
    table = []
    for row in record["results"]:
        entries = row["contenders"]
        table.append(
            [
                row["wrapper"],
                row["rule"],
                *(report.cell(entries.get(label, {}).get("median_ms")) for label in labels),
                report.cell(row["speedup_vs_torch_best"], "×"),
                report.cell(row["int8_time_vs_adamkit"], "×"),
                *(_per_rank(entries.get(label)) for label in labels),
            ]
        )
    return table


def _per_rank(entry):
    if entry is None:
        return report.MISSING
    return " / ".join(f"{size / MIB:.2f}" for size in entry["state_bytes_per_rank"])


def method_lines(record):
    """How the run was made and how to read it."""
    settings = record["settings"]
    return [
        f"{settings['world_size']} processes ({settings['backend']}, {settings['threads']['torch']} thread each) "
        f"train an MLP of {settings['depth']} square layers of {settings['width']} "
        f"({settings['n_params']:,} parameters), each contender its own copy wrapped alike "
        "(FSDP2: every layer and the root `fully_shard`ed).",
        f"Each time is the median ms of `optimizer.step()` alone over {report.count(settings['steps'], 'timed step')} "
        f"after {report.count(settings['warmup'], 'warm-up step')}, every contender taking one step per round in "
        "turn, each step between two barriers, so it is the slower rank's.",
        f"`{report.SPEEDUP_HEADER}`: the fastest torch.optim path's time over adamkit.torch's (above 1: adamkit is "
        'faster). `int8 / adamkit`: adamkit.torch with `state_dtype="int8"` over adamkit.torch (float32 state). '
        "State MiB: the optimizer's state tensors on rank 0 / rank 1 (a ZeRO optimizer's shard; FSDP2's local "
        "shards).",
    ]


def notes(record):
    """What was not timed, once per note."""
    return list(dict.fromkeys(note for row in record["results"] for note in row["notes"]))


def markdown(record):
    """The Markdown report: command, machine, method, the table, and notes."""
    lines = [
        f"# {TITLE}",
        "",
        "```",
        record["command"],
        "```",
        "",
        f"Run {record['started']}. Machine: {report.machine_line(record)}.",
        "",
        report.load_line(record),
        "",
        *method_lines(record),
        "",
        *report.markdown_table(headers(record), rows(record)),
        "",
        "Notes:",
        *(f"- {note}" for note in notes(record)),
    ]
    return "\n".join(lines) + "\n"


def print_table(record, console):
    """Print the table with rich on ``console``, then the notes."""
    report.print_cells(
        record["command"], headers(record), rows(record), notes(record), console, label_columns=LABEL_COLUMNS
    )
