"""The quality of compact optimizer state: the final train loss of every optimizer that takes
bfloat16 or 8-bit state, with that state against float32 state, on ``adamkit compare``'s digits
tasks.

The optimizers are ``adamkit compare``'s (:data:`adamkit.specs.COMPARED`) whose rule takes a
compact ``state_dtype`` (:data:`adamkit.compact.policy.COMPACT_RULES`), each with the compact
states its rule takes. Each run is trained by compare's own code
(:func:`adamkit.compare.torch_training.train`): runs of one seed share the split, the initial
weights, the dropout masks and the minibatches, so they differ only by the optimizer's state.
The final train loss is compare's, on the whole train set with dropout off, evaluated in float32.

Each optimizer's learning rate on a task is :data:`LR_FRACTION` of its own on that task in
``adamkit compare`` (:attr:`adamkit.rules._spec.Variant.compare_lrs`, from the sweep of
``docs/compare.md``): at compare's own the final loss is chaotic, and float64 alone moves it by
tens of percent. Float64 parameters and state (``fp64``) are trained too, as the yardstick: the
same math rounded less, so its gap is what rounding alone does to the final loss. A gap is a
state's mean loss over fp32's mean minus 1.

Losses do not depend on timing: the runs are on one thread, and the same code on the same
machine gives the same losses.
"""

import contextlib
import time

import torch

from adamkit import kernels, specs
from adamkit.compact import policy
from adamkit.compare import torch_training
from adamkit.compare.precision import FLOAT32, Precision
from adamkit.compare.tasks import TASKS, digits_split

BASELINE = "fp32"
YARDSTICK = "fp64"
# Per state: its description, the precision of the model and the optimizer's extra options.
STATES = {
    BASELINE: ("float32 parameters and state (the baseline)", FLOAT32, {}),
    **{
        state_dtype: (f"state_dtype={state_dtype!r}", FLOAT32, {"state_dtype": state_dtype})
        for state_dtype in policy.COMPACT_STATE_DTYPES
    },
    YARDSTICK: ("float64 parameters and state: rounding alone", Precision(torch.float64), {}),
}
LR_FRACTION = 0.1
"""Each optimizer's learning rate here over its own in ``adamkit compare`` on the same task."""

OPTIMIZERS = tuple(
    name
    for name, (spec, _) in specs.COMPARED.items()
    if any(policy.takes_compact_state(spec, state_dtype) for state_dtype in policy.COMPACT_STATE_DTYPES)
)
"""The names in ``adamkit compare`` of the optimizers that take compact state, in its order."""
FIRST = OPTIMIZERS[0]
"""The optimizer trained on every task; the others train on the tasks that train every optimizer."""


def states_of(name):
    """The states optimizer ``name`` is trained with: float32, each compact ``state_dtype`` its
    rule takes, and float64."""
    spec, _ = specs.COMPARED[name]
    return tuple(
        state
        for state, (_, _, options) in STATES.items()
        if "state_dtype" not in options or policy.takes_compact_state(spec, options["state_dtype"])
    )


def learning_rate(name, task):
    """Optimizer ``name``'s learning rate on ``task``: :data:`LR_FRACTION` of its own in compare."""
    _, variant = specs.COMPARED[name]
    return variant.compare_lrs[task] * LR_FRACTION


def run_quality(settings, *, progress=None):
    """Train every task of ``settings`` (:class:`~adamkit.benchmarking.settings.QualitySettings`)
    with each of its optimizers, states and seeds; return the JSON-ready record."""
    report = progress or (lambda message: None)
    record = {
        "settings": {
            "tasks": list(settings.tasks),
            "optimizers": {task: list(settings.optimizers_of(task)) for task in settings.tasks},
            "lr_fraction": LR_FRACTION,
            "seeds": list(range(settings.seeds)),
            "epochs": {task: settings.epochs_of(task) for task in settings.tasks},
            "threads": 1,
        },
        "states": {name: description for name, (description, _, _) in STATES.items()},
        "results": [],
    }
    with _one_thread():
        for task in settings.tasks:
            for name in settings.optimizers_of(task):
                lr = learning_rate(name, task)
                report(
                    f"training {task} with {name} at lr {lr:g}: {', '.join(states_of(name))} state, "
                    f"{settings.seeds} seed(s)"
                )
                record["results"].append(_row(task, name, lr, settings))
    return record


def _row(task, name, lr, settings):
    epochs = settings.epochs_of(task)
    losses, cpu_seconds = {}, {}
    for state in states_of(name):
        _, precision, options = STATES[state]
        losses[state], cpu_seconds[state] = [], []
        for seed in range(settings.seeds):
            started = time.process_time()
            _, run = torch_training.train(
                TASKS[task],
                name,
                lr,
                digits_split(seed),
                seed=seed,
                epochs=epochs,
                precision=precision,
                optimizer_options=options,
            )
            losses[state].append(run.train_loss[-1])
            cpu_seconds[state].append(time.process_time() - started)
    base = losses[BASELINE]
    return {
        "task": task,
        "model": TASKS[task].model,
        "optimizer": name,
        "label": specs.COMPARED[name][1].label,
        "epochs": epochs,
        "lr": lr,
        "losses": losses,
        "mean_loss": {state: _mean(values) for state, values in losses.items()},
        "gap_of_mean": {
            state: _mean(values) / _mean(base) - 1 for state, values in losses.items() if state != BASELINE
        },
        "largest_seed_gap": {
            state: max((value / reference - 1 for value, reference in zip(values, base)), key=abs)
            for state, values in losses.items()
            if state != BASELINE
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
