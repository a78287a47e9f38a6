"""The quality of compact optimizer state: the final train loss of ``adamkit.torch.Adam`` with
bfloat16 and 8-bit state against float32 state, on ``adamkit compare``'s digits tasks.

Each run is trained by compare's own code (:func:`adamkit.compare.torch_training.train`): runs of
one seed share the split, the initial weights, the dropout masks and the minibatches, so they
differ only by the optimizer's state. The final train loss is compare's, on the whole train set
with dropout off, evaluated in float32.

The learning rate is below compare's own: at compare's (3e-3 for mlp, 1e-2 for cnn) the final
loss is chaotic, and float64 alone moves it by tens of percent. Float64 parameters and state
(``fp64``) are trained too, as the yardstick: the same math rounded less, so its gap is what
rounding alone does to the final loss. A gap is a state's mean loss over fp32's mean minus 1.

Losses do not depend on timing: the runs are on one thread, and the same code on the same
machine gives the same losses.
"""

import contextlib
import time

import torch

from adamkit import kernels
from adamkit.compare import torch_training
from adamkit.compare.precision import FLOAT32, Precision
from adamkit.compare.tasks import TASKS, digits_split

BASELINE = "fp32"
# Per state: its description, the precision of the model and the optimizer's extra options.
STATES = {
    BASELINE: ("float32 parameters and state (the baseline)", FLOAT32, {}),
    "bf16": ('state_dtype="bf16"', FLOAT32, {"state_dtype": "bf16"}),
    "int8": ('state_dtype="int8"', FLOAT32, {"state_dtype": "int8"}),
    "fp64": ("float64 parameters and state: rounding alone", Precision(torch.float64), {}),
}
OPTIMIZER = "adam"


def run_quality(settings, *, progress=None):
    """Train every task of ``settings`` (:class:`~adamkit.benchmarking.settings.QualitySettings`)
    with every state and seed; return the JSON-ready record."""
    report = progress or (lambda message: None)
    record = {
        "settings": {
            "optimizer": "adamkit.torch.Adam",
            "tasks": list(settings.tasks),
            "lr": settings.lr,
            "seeds": list(range(settings.seeds)),
            "epochs": {task: settings.epochs_of(task) for task in settings.tasks},
            "threads": 1,
        },
        "states": {name: description for name, (description, _, _) in STATES.items()},
        "results": [],
    }
    with _one_thread():
        for task in settings.tasks:
            report(f"training {task} at lr {settings.lr:g} with {', '.join(STATES)} state, {settings.seeds} seed(s)")
            record["results"].append(_task_row(task, settings))
    return record


def _task_row(task, settings):
    epochs = settings.epochs_of(task)
    losses, cpu_seconds = {}, {}
    for name, (_, precision, options) in STATES.items():
        losses[name], cpu_seconds[name] = [], []
        for seed in range(settings.seeds):
            started = time.process_time()
            _, run = torch_training.train(
                TASKS[task], OPTIMIZER, settings.lr, digits_split(seed), seed=seed, epochs=epochs,
                precision=precision, optimizer_options=options,
            )
            losses[name].append(run.train_loss[-1])
            cpu_seconds[name].append(time.process_time() - started)
    base = losses[BASELINE]
    return {
        "task": task,
        "model": TASKS[task].model,
        "epochs": epochs,
        "lr": settings.lr,
        "losses": losses,
        "mean_loss": {name: _mean(values) for name, values in losses.items()},
        "gap_of_mean": {name: _mean(values) / _mean(base) - 1 for name, values in losses.items() if name != BASELINE},
        "largest_seed_gap": {
            name: max((value / reference - 1 for value, reference in zip(values, base)), key=abs)
            for name, values in losses.items()
            if name != BASELINE
        },
        "cpu_seconds": cpu_seconds,
    }


def _mean(values):
    return sum(values) / len(values)


@contextlib.contextmanager
def _one_thread():
    """torch and adamkit's kernels on one thread inside; after it, torch's count is restored and
    the kernels are back on OpenMP's default."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    kernels.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        kernels.set_num_threads(None)
