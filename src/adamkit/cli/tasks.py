"""The comparison task: a small MLP classifying scikit-learn's bundled 8×8 digits.

The digits ship with scikit-learn, so nothing is downloaded. The split is stratified and
fixed by the seed; features are standardised with statistics of the training set only.
"""

from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

TEST_FRACTION = 0.25
HIDDEN_UNITS = 128


@dataclass(frozen=True)
class Split:
    """Standardised float32 inputs and int64 labels of the train and test sets."""

    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor

    @property
    def features(self):
        return self.train_inputs.shape[1]

    @property
    def classes(self):
        return int(self.train_labels.max()) + 1


def digits_split(seed):
    """The digits data set split by ``seed`` into a stratified train set and test set."""
    inputs, labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        inputs, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    scaler = StandardScaler().fit(train_x)
    return Split(
        torch.as_tensor(scaler.transform(train_x), dtype=torch.float32),
        torch.as_tensor(train_y, dtype=torch.int64),
        torch.as_tensor(scaler.transform(test_x), dtype=torch.float32),
        torch.as_tensor(test_y, dtype=torch.int64),
    )


def mlp(split, seed):
    """A features-128-classes ReLU network, initialised identically for a given ``seed``."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(split.features, HIDDEN_UNITS),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN_UNITS, split.classes),
    )


@torch.no_grad()
def evaluate(model, inputs, labels):
    """The mean cross-entropy and the accuracy of ``model`` on a whole data set."""
    logits = model(inputs)
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(dim=1) == labels).double().mean().item()
    return loss, accuracy
