"""logreg on the NumPy front end: softmax regression with a hand-written gradient, no torch.

It mirrors :class:`adamkit.compare.models.SoftmaxRegression` (zero weights, penalty λ/2·‖W‖²) and
the torch loop: the same minibatches and the same γ/√t schedule, which torch applies with a
``LambdaLR`` and this loop by setting each group's ``lr`` before the step.
"""

import time

import numpy as np

from adamkit.compare.choices import hyperparameters, make_optimizer
from adamkit.compare.records import Run, state_bytes
from adamkit.compare.tasks import LOGREG_L2, minibatches
from adamkit.diagnostics import diagnose


def objective_and_gradient(weight, bias, inputs, labels):
    r"""The mean cross-entropy of softmax(XW + b) plus :math:`\lambda/2\|W\|^2`, and its gradient.

    With :math:`P` the softmax probabilities and :math:`Y` the one-hot labels of :math:`n`
    samples, :math:`\nabla_W = X^\top(P - Y)/n + \lambda W` and :math:`\nabla_b = \sum_i (P - Y)_i/n`.
    """
    logits = inputs @ weight + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    loss = -log_probs[rows, labels].mean() + LOGREG_L2 / 2 * np.sum(weight * weight)
    residual = np.exp(log_probs)
    residual[rows, labels] -= 1
    residual /= len(labels)
    return float(loss), (inputs.T @ residual + LOGREG_L2 * weight, residual.sum(axis=0))


def accuracy(weight, bias, inputs, labels):
    return float(np.mean(np.argmax(inputs @ weight + bias, axis=1) == labels))


def train(task, name, lr, split, *, seed, epochs, diagnostic_steps=(), on_epoch=None):
    """Train ``task`` (logreg) with the NumPy optimizer ``name``; return ``(hyperparameters, Run)``."""
    if not task.numpy_backend:
        raise ValueError(f"the NumPy backend runs only the logreg task, not {task.name!r}")
    weight = np.zeros((split.features, split.classes), dtype=np.float32)
    bias = np.zeros(split.classes, dtype=np.float32)
    optimizer = make_optimizer(name, "numpy", [weight, bias], lr)
    used = hyperparameters(optimizer)
    run = Run(seed)
    _record(run, weight, bias, split)
    read_at, steps = set(diagnostic_steps), 0
    for epoch in range(epochs):
        for batch in minibatches(len(split.train_labels), seed, epoch):
            started = time.perf_counter()
            if task.lr_decay is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr * task.lr_decay(steps)
            loss, grads = objective_and_gradient(
                weight, bias, split.train_inputs[batch], split.train_labels[batch]
            )
            optimizer.step(list(grads))
            run.seconds += time.perf_counter() - started
            run.batch_loss.append(loss)
            steps += 1
            if steps in read_at:
                run.diagnostics.append(
                    {"step": steps, "groups": [group.as_dict() for group in diagnose(optimizer)]}
                )
        _record(run, weight, bias, split)
        if on_epoch is not None:
            on_epoch(run)
    run.state_bytes = state_bytes(optimizer)
    return used, run


def _record(run, weight, bias, split):
    loss, _ = objective_and_gradient(weight, bias, split.train_inputs, split.train_labels)
    run.train_loss.append(loss)
    run.test_accuracy.append(accuracy(weight, bias, split.test_inputs, split.test_labels))
