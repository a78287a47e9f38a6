"""The torch models of the three ``compare`` tasks; each has a ``penalty()`` added to its loss."""

import torch
from torch import nn

from adamkit.compare.tasks import CNN_DROPOUT, LOGREG_L2, MLP_DROPOUT, MLP_HIDDEN


class SoftmaxRegression(nn.Module):
    """Logistic regression over the classes, from zero weights, with the penalty λ/2·‖W‖²."""

    def __init__(self, features, classes):
        super().__init__()
        self.linear = nn.Linear(features, classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, inputs):
        return self.linear(inputs)

    def penalty(self):
        return LOGREG_L2 / 2 * self.linear.weight.square().sum()


class MLP(nn.Module):
    """features-1000-1000-classes with ReLU, and dropout after each hidden layer."""

    def __init__(self, features, classes):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(features, MLP_HIDDEN), nn.ReLU(), nn.Dropout(MLP_DROPOUT),
            nn.Linear(MLP_HIDDEN, MLP_HIDDEN), nn.ReLU(), nn.Dropout(MLP_DROPOUT),
            nn.Linear(MLP_HIDDEN, classes),
        )

    def forward(self, inputs):
        return self.layers(inputs)

    def penalty(self):
        return 0.0


class CNN(nn.Module):
    """Two 3×3 convolutions of 32 channels, 2×2 max-pooling, a 3×3 convolution of 64, pooling,
    a 128-unit layer with dropout and the classifier, on the images as 1×8×8."""

    def __init__(self, features, classes):
        super().__init__()
        side = round(features**0.5)
        self.side = side
        self.layers = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (side // 4) ** 2, 128), nn.ReLU(), nn.Dropout(CNN_DROPOUT),
            nn.Linear(128, classes),
        )

    def forward(self, inputs):
        return self.layers(inputs.reshape(-1, 1, self.side, self.side))

    def penalty(self):
        return 0.0


MODELS = {"logreg": SoftmaxRegression, "mlp": MLP, "cnn": CNN}


def build(task_name, features, classes, seed):
    """The model of ``task_name``, initialised identically for a given ``seed``."""
    torch.manual_seed(seed)
    return MODELS[task_name](features, classes)


def objective(model, inputs, labels):
    """The training loss: mean cross-entropy plus the model's penalty."""
    return nn.functional.cross_entropy(model(inputs), labels) + model.penalty()


@torch.no_grad()
def evaluate(model, split_tensors):
    """The training loss on the whole train set and the accuracy on the test set, dropout off."""
    train_inputs, train_labels, test_inputs, test_labels = split_tensors
    model.eval()
    loss = objective(model, train_inputs, train_labels).item()
    accuracy = (model(test_inputs).argmax(dim=1) == test_labels).double().mean().item()
    model.train()
    return loss, accuracy
