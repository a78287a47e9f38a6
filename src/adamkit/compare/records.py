"""What one training run records, and the summary of one optimizer's runs over several seeds."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Run:
    """The record of one optimizer's training run with one seed.

    ``train_loss`` and ``test_accuracy`` hold one entry before training and one after each
    epoch, measured on the whole set with dropout off; ``batch_loss`` holds every minibatch
    loss. ``seconds`` counts the training steps only, not the evaluations or diagnostics.
    ``diagnostics`` holds ``{"step": n, "groups": [GroupDiagnostics.as_dict(), ...]}`` after
    the steps where they were read (empty unless asked for).
    """

    seed: int
    train_loss: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    batch_loss: list = field(default_factory=list)
    seconds: float = 0.0
    state_bytes: int = 0
    diagnostics: list = field(default_factory=list)

    @property
    def loss_area(self):
        """The trapezoidal area under the per-epoch training-loss curve, in loss·epochs."""
        values = np.asarray(self.train_loss, dtype=np.float64)
        return float(np.sum((values[1:] + values[:-1]) / 2))


@dataclass
class Summary:
    """One optimizer's runs, one per seed, with the means the table shows."""

    name: str
    label: str
    optimizer: str
    hyperparameters: dict
    runs: list

    @property
    def final_train_loss(self):
        return _mean(run.train_loss[-1] for run in self.runs)

    @property
    def final_test_accuracy(self):
        return _mean(run.test_accuracy[-1] for run in self.runs)

    @property
    def loss_area(self):
        return _mean(run.loss_area for run in self.runs)

    @property
    def seconds(self):
        return _mean(run.seconds for run in self.runs)

    @property
    def state_bytes(self):
        return self.runs[0].state_bytes


def state_bytes(optimizer):
    """The memory of every array or tensor in the optimizer's per-parameter state, in bytes.

    The torch front end keys ``state`` by parameter; the NumPy front end lists it in order.
    """
    states = optimizer.state.values() if isinstance(optimizer.state, Mapping) else optimizer.state
    return sum(value.nbytes for state in states for value in state.values() if hasattr(value, "nbytes"))


def diagnostic_steps(total_steps, count=40):
    """About ``count`` step numbers from 1 to ``total_steps``, spaced evenly on a log scale."""
    steps = np.unique(np.geomspace(1, total_steps, count).round().astype(int))
    return [int(step) for step in steps]


def _mean(values):
    values = list(values)
    return math.fsum(values) / len(values)
