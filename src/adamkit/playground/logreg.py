"""The playground's small real task: logistic regression on the digits, trained live.

It is ``adamkit compare --task logreg --backend numpy``: the same data split, minibatches,
γ/√t schedule, learning rates and training loop (:func:`adamkit.compare.numpy_training.train`),
run optimizer after optimizer, with each epoch's training loss and test accuracy sent as soon
as that epoch ends.
"""

import functools
import queue
import threading
from dataclasses import dataclass

from adamkit.compare import numpy_training
from adamkit.compare.choices import OPTIMIZERS
from adamkit.compare.tasks import LEARNING_RATES, TASKS, digits_split
from adamkit.playground.settings import BadSetting, integer

TASK = TASKS["logreg"]
DEFAULT_OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
MAX_SEED = 1000


@dataclass(frozen=True)
class LogregTask:
    """The optimizers to train with, the number of epochs and the seed of the split and batches."""

    optimizers: tuple
    epochs: int
    seed: int


def catalogue():
    """The optimizers the task offers, their labels and learning rates, and its epoch limit."""
    return {
        "optimizers": {name: {"label": choice.label, "lr": LEARNING_RATES[name][TASK.name]}
                       for name, choice in OPTIMIZERS.items()},
        "default_optimizers": list(DEFAULT_OPTIMIZERS),
        "epochs": TASK.epochs,
    }


def read_task(body):
    """The :class:`LogregTask` of the JSON object ``body``: ``optimizers``, ``epochs``, ``seed``."""
    if not isinstance(body, dict):
        raise BadSetting("body", "must be a JSON object")
    extra = sorted(set(body) - {"optimizers", "epochs", "seed"})
    if extra:
        raise BadSetting(extra[0], "is not a setting of the logreg task")
    names = body.get("optimizers", list(DEFAULT_OPTIMIZERS))
    if not isinstance(names, list) or not names or len(names) > len(OPTIMIZERS):
        raise BadSetting("optimizers", f"must be a list of 1 to {len(OPTIMIZERS)} optimizer names")
    for index, name in enumerate(names):
        if not isinstance(name, str) or name not in OPTIMIZERS or name in names[:index]:
            raise BadSetting(f"optimizers[{index}]",
                             f"must be one of {', '.join(OPTIMIZERS)}, each once; got {name!r}")
    return LogregTask(
        optimizers=tuple(names),
        epochs=integer(body, "epochs", TASK.epochs, 1, TASK.epochs),
        seed=integer(body, "seed", 0, 0, MAX_SEED),
    )


@functools.lru_cache(maxsize=4)
def split(seed):
    """The digits split of ``seed``, loaded once per seed."""
    return digits_split(seed)


class Stopped(Exception):
    """Raised inside the training loop when the reader has gone away."""


def train(task):
    """Yield ``{"optimizer", "label", "lr", "epoch", "train_loss", "test_accuracy"}`` per epoch
    (epoch 0 is the start), training on a worker thread; closing the generator stops it."""
    epochs = queue.Queue()
    stop = threading.Event()
    done = object()

    def work():
        try:
            for name in task.optimizers:
                lr = LEARNING_RATES[name][TASK.name]

                def on_epoch(run, name=name, lr=lr):
                    if stop.is_set():
                        raise Stopped
                    first = 0 if len(run.train_loss) == 2 else len(run.train_loss) - 1
                    for epoch in range(first, len(run.train_loss)):
                        epochs.put({"optimizer": name, "label": OPTIMIZERS[name].label, "lr": lr,
                                    "epoch": epoch, "train_loss": run.train_loss[epoch],
                                    "test_accuracy": run.test_accuracy[epoch]})

                numpy_training.train(TASK, name, lr, split(task.seed), seed=task.seed,
                                     epochs=task.epochs, on_epoch=on_epoch)
        except Stopped:
            pass
        finally:
            epochs.put(done)

    worker = threading.Thread(target=work, name="adamkit-playground-logreg", daemon=True)
    worker.start()
    try:
        while (item := epochs.get()) is not done:
            yield item
    finally:
        stop.set()
