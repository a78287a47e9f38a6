"""Minibatch training of one model with one optimizer, recording what ``compare`` reports."""

import time
from dataclasses import dataclass, field

import torch

from adamkit.cli.tasks import evaluate, mlp


@dataclass
class Run:
    """The record of one optimizer's training run.

    ``train_loss`` and ``test_accuracy`` hold one entry before training and one after each
    epoch, measured on the whole set; ``batch_loss`` holds every minibatch loss. ``seconds``
    counts the training steps only, not the evaluations.
    """

    name: str
    optimizer: str
    hyperparameters: dict
    train_loss: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    batch_loss: list = field(default_factory=list)
    seconds: float = 0.0
    state_bytes: int = 0


def state_bytes(optimizer):
    """The memory of every tensor in the optimizer's per-parameter state, in bytes."""
    return sum(
        value.nbytes
        for state in optimizer.state.values()
        for value in state.values()
        if torch.is_tensor(value)
    )


def hyperparameters(optimizer):
    """The first parameter group's settings as plain JSON values (tuples become lists)."""
    group = optimizer.param_groups[0]
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in group.items() if key != "params"}


def train(name, make_optimizer, split, *, epochs, batch_size, seed, on_epoch=None):
    """Train a fresh :func:`~adamkit.cli.tasks.mlp` with ``make_optimizer(parameters)``.

    Every run with the same ``seed`` starts from the same weights and sees the minibatches
    in the same order, so runs differ only by their optimizer. ``on_epoch(run)`` is called
    after each epoch.
    """
    model = mlp(split, seed)
    optimizer = make_optimizer(model.parameters())
    run = Run(name, type(optimizer).__name__, hyperparameters(optimizer))
    order = torch.Generator().manual_seed(seed)
    _record(run, model, split)
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in torch.randperm(len(split.train_labels), generator=order).split(batch_size):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(split.train_inputs[batch]), split.train_labels[batch]
            )
            loss.backward()
            optimizer.step()
            run.batch_loss.append(loss.item())
        run.seconds += time.perf_counter() - started
        _record(run, model, split)
        if on_epoch is not None:
            on_epoch(run)
    run.state_bytes = state_bytes(optimizer)
    return run


def _record(run, model, split):
    loss, _ = evaluate(model, split.train_inputs, split.train_labels)
    _, accuracy = evaluate(model, split.test_inputs, split.test_labels)
    run.train_loss.append(loss)
    run.test_accuracy.append(accuracy)
