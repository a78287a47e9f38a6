"""The three comparison tasks of ``adamkit compare`` and their data, after Kingma & Ba (2015), Sec. 6.

All three classify scikit-learn's bundled 8×8 digits, so nothing is downloaded. The split is
stratified and fixed by the seed; features are standardised with statistics of the training
set only. The arrays are float32 NumPy arrays: the NumPy backend needs nothing else.

==========  ======================================================  ======  =====  ===========
task        model (the paper's experiment)                          epochs  batch  lr schedule
==========  ======================================================  ======  =====  ===========
``logreg``  L2-regularised logistic regression (Fig. 1)             40      128    γ/√t
``mlp``     two hidden layers of 1000 ReLU units, dropout (Fig. 2)  8       128    constant
``cnn``     a small convolutional net on the 8×8 images (Fig. 3)    10      128    constant
==========  ======================================================  ======  =====  ===========

:data:`LEARNING_RATES` lists each optimizer's learning rate per task; ``--lr`` overrides it.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from adamkit import specs

TEST_FRACTION = 0.25
BATCH_SIZE = 128


def inverse_sqrt_decay(steps_taken):
    """logreg's learning-rate factor 1/√t for step t = ``steps_taken`` + 1 (the paper's Fig. 1)."""
    return 1 / math.sqrt(steps_taken + 1)


@dataclass(frozen=True)
class Task:
    """One comparison task: its model, its defaults, and whether the NumPy backend can run it.

    ``lr_decay(steps_taken)`` is the factor on the learning rate of the next step, or ``None``
    for a constant learning rate.
    """

    name: str
    model: str
    epochs: int
    lr_decay: Callable[[int], float] | None = None
    numpy_backend: bool = False

    @property
    def lr_schedule(self):
        return "constant" if self.lr_decay is None else "lr/sqrt(t)"


# The strength λ of logreg's penalty λ/2·‖W‖², which is part of its training loss.
LOGREG_L2 = 1e-3
MLP_HIDDEN = 1000
MLP_DROPOUT = 0.5
CNN_DROPOUT = 0.5

TASKS = {
    "logreg": Task("logreg", f"softmax regression, L2 penalty λ={LOGREG_L2:g} on the weights",
                   epochs=40, lr_decay=inverse_sqrt_decay, numpy_backend=True),
    "mlp": Task("mlp", f"MLP {MLP_HIDDEN}-{MLP_HIDDEN} ReLU, dropout {MLP_DROPOUT:g}",
                epochs=8),
    "cnn": Task("cnn", f"CNN conv32-conv32-pool-conv64-pool-fc128, dropout {CNN_DROPOUT:g}",
                epochs=10),
}

#: Each optimizer's learning rate per task (Variant.compare_lrs, beside its rule): of a grid spaced
#: by about 3×, the one with the smallest area under the training-loss curve (fast and low) on
#: seed 0 at the task's default epochs. docs/compare.md lists the grids and every result of that
#: sweep; benchmarks/compare_lr_sweep.py runs it for the optimizers given.
LEARNING_RATES = {name: variant.compare_lrs for name, (_, variant) in specs.COMPARED.items()}


@dataclass(frozen=True)
class Split:
    """Standardised float32 inputs (samples × 64) and int64 labels of the train and test sets."""

    train_inputs: np.ndarray
    train_labels: np.ndarray
    test_inputs: np.ndarray
    test_labels: np.ndarray

    @property
    def features(self):
        return self.train_inputs.shape[1]

    @property
    def classes(self):
        return int(self.train_labels.max()) + 1


def digits_split(seed):
    """The digits data set split by ``seed`` into a stratified train set and test set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    inputs, labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        inputs, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    scaler = StandardScaler().fit(train_x)
    return Split(
        scaler.transform(train_x).astype(np.float32),
        train_y.astype(np.int64),
        scaler.transform(test_x).astype(np.float32),
        test_y.astype(np.int64),
    )


def minibatches(samples, seed, epoch):
    """The minibatch index arrays of one epoch: a permutation fixed by ``seed`` and ``epoch``.

    Both backends and every optimizer see the same minibatches in the same order.
    """
    order = np.random.default_rng([seed, epoch]).permutation(samples)
    return [order[start:start + BATCH_SIZE] for start in range(0, samples, BATCH_SIZE)]
