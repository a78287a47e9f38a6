"""Training one torch model of a ``compare`` task with one optimizer and one seed."""

import time

import torch

from adamkit.compare.choices import hyperparameters as optimizer_hyperparameters
from adamkit.compare.choices import make_optimizer
from adamkit.compare.models import build, evaluate, objective
from adamkit.compare.precision import FLOAT32, as_float32
from adamkit.compare.records import Run, state_bytes
from adamkit.compare.tasks import minibatches
from adamkit.diagnostics import diagnose


def as_tensors(split):
    """The split's arrays as torch tensors (sharing memory): train inputs, labels, test inputs, labels."""
    return tuple(torch.from_numpy(array) for array in
                 (split.train_inputs, split.train_labels, split.test_inputs, split.test_labels))


def train(task, name, lr, split, *, seed, epochs, diagnostic_steps=(), on_epoch=None,
          precision=FLOAT32, optimizer_options=None):
    """Train a fresh model of ``task`` with optimizer ``name``; return ``(hyperparameters, Run)``.

    Every run with the same ``seed`` starts from the same weights, draws the same dropout
    masks and sees the same minibatches, so runs differ only by their optimizer.
    ``diagnose`` is read after each step listed in ``diagnostic_steps``. ``precision``
    (:class:`~adamkit.compare.precision.Precision`) sets the parameters' dtype and autocast, and
    ``optimizer_options`` are keyword arguments added to the optimizer's (``state_dtype``...);
    the losses and accuracies are evaluated in float32 from the weights whatever the precision.
    """
    model = precision.model(build(task.name, split.features, split.classes, seed))
    optimizer = make_optimizer(name, "torch", model.parameters(), lr, **(optimizer_options or {}))
    hyperparameters = optimizer_hyperparameters(optimizer)
    scheduler = (None if task.lr_decay is None
                 else torch.optim.lr_scheduler.LambdaLR(optimizer, task.lr_decay))
    tensors = as_tensors(split)
    train_inputs, train_labels = precision.inputs(tensors[0]), tensors[1]
    run = Run(seed)
    _record(run, model, tensors)
    read_at, steps = set(diagnostic_steps), 0
    for epoch in range(epochs):
        for batch in minibatches(len(train_labels), seed, epoch):
            started = time.perf_counter()
            index = torch.from_numpy(batch)
            optimizer.zero_grad()
            with precision.forward():
                loss = objective(model, train_inputs[index], train_labels[index])
            loss.backward()
            optimizer.step()
            run.seconds += time.perf_counter() - started
            run.batch_loss.append(loss.item())
            steps += 1
            # Read before the scheduler changes lr, so that they describe the step just taken.
            if steps in read_at:
                run.diagnostics.append(
                    {"step": steps, "groups": [group.as_dict() for group in diagnose(optimizer)]}
                )
            if scheduler is not None:
                started = time.perf_counter()
                scheduler.step()
                run.seconds += time.perf_counter() - started
        _record(run, model, tensors)
        if on_epoch is not None:
            on_epoch(run)
    run.state_bytes = state_bytes(optimizer)
    return hyperparameters, run


def _record(run, model, tensors):
    loss, accuracy = evaluate(as_float32(model), tensors)
    run.train_loss.append(loss)
    run.test_accuracy.append(accuracy)
