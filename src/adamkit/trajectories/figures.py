"""The figures and records of ``adamkit trajectories``: each test function's optimizer paths,
Adam with and without bias correction, AdamW against Adam with L2 decay, every path's JSON
record, and the table of final distances.

The command's arguments are parsed in :mod:`adamkit.cli.trajectories`. Each ``draw_*`` function
takes them (``args``: ``steps``, ``optimizers``, ``seed``, ``weight_decay``, ``out``), writes its
figure to ``args.out``, adds the file to ``written`` and returns the figure's record.
"""

from adamkit.trajectories import variants
from adamkit.trajectories.choices import OPTIMIZERS
from adamkit.trajectories.descent import trace
from adamkit.trajectories.functions import FUNCTIONS

JSON_FILE = "trajectories.json"
BIAS_CORRECTION_FILE = "bias-correction.png"
WEIGHT_DECAY_FILE = "weight-decay.png"
# The --bias-correction figure: its function, learning rate and number of steps.
BIAS_CORRECTION = {"function": "ill-conditioned", "lr": 0.1, "steps": 40}
# The --weight-decay figure: the default decay, the learning rate and the number of steps.
WEIGHT_DECAY = {"decay": 0.3, "lr": 0.05, "steps": 20000}


def plot_file(function):
    return f"{function}.png"


def draw_function(name, args, written):
    """The paths of the chosen optimizers on the test function ``name``."""
    from adamkit.trajectories.plot import plot_function

    function = FUNCTIONS[name]
    steps = args.steps or function.steps
    chosen = args.optimizers or function.optimizers or list(OPTIMIZERS)
    trajectories = trace(function, chosen, steps=steps, seed=args.seed)
    written.append(args.out / plot_file(name))
    plot_function(function, trajectories, written[-1], steps)
    return _function_record(function, steps, trajectories)


def draw_bias_correction(args, written):
    """Adam beside Adam without bias correction over its first steps."""
    from adamkit.trajectories.plot import plot_bias_correction

    function, steps = FUNCTIONS[BIAS_CORRECTION["function"]], BIAS_CORRECTION["steps"]
    trajectories = variants.bias_correction(function, lr=BIAS_CORRECTION["lr"], steps=steps)
    written.append(args.out / BIAS_CORRECTION_FILE)
    plot_bias_correction(function, *trajectories, variants.BETAS, written[-1])
    return {**_function_record(function, steps, trajectories), "betas": list(variants.BETAS)}


def draw_weight_decay(args, written):
    """AdamW against Adam with L2 decay, both with ``args.weight_decay``."""
    from adamkit.trajectories.plot import plot_weight_decay

    trajectories, markers = variants.weight_decay(
        decay=args.weight_decay, lr=WEIGHT_DECAY["lr"], steps=WEIGHT_DECAY["steps"]
    )
    written.append(args.out / WEIGHT_DECAY_FILE)
    plot_weight_decay(variants.SHIFTED, trajectories, markers, args.weight_decay, written[-1])
    return {
        **_function_record(variants.SHIFTED, WEIGHT_DECAY["steps"], trajectories),
        "weight_decay": args.weight_decay,
        "marked_points": {label: list(point) for label, point in markers.items()},
    }


def _function_record(function, steps, trajectories):
    from adamkit.trajectories.plot import legend_label

    return {
        "title": function.title,
        "formula": function.formula,
        "start": list(function.start),
        "reference": list(function.reference),
        "reference_name": function.reference_name,
        "steps": steps,
        "noise": function.noise,
        "lr_note": function.lr_note,
        "paths": {
            t.name: {
                "label": t.label,
                "lr": t.lr,
                "legend": legend_label(t),
                "final_point": t.path[-1].tolist(),
                "final_distance": t.final_distance,
                "path": t.path.tolist(),
            }
            for t in trajectories
        },
    }


def distance_table(document):
    """Every path's final distance, from the JSON document, in the order they were drawn."""
    from rich.table import Table

    records = [*document["functions"].items()]
    records += [(name.replace("_", "-"), document[name]) for name in ("bias_correction", "weight_decay")
                if name in document]
    table = Table(title="final distance to the minimum (saddle: to the saddle point)")
    for column in ("function", "optimizer", "lr", "final distance"):
        table.add_column(column, justify="left" if column in ("function", "optimizer") else "right",
                         no_wrap=column == "function")
    for name, record in records:
        for path in record["paths"].values():
            table.add_row(name, path["label"], f"{path['lr']:g}", f"{path['final_distance']:.4g}")
    return table
