"""Copying a NumPy optimizer (copy.deepcopy, pickle) gives an independent optimizer with the
same hyperparameters and state, which steps bit for bit as the original, on its own arrays.

Before, the copy had empty state (the state table is keyed by the arrays' ids) and its cached
step plan still held the original arrays' data pointers, so stepping the copy moved the
original's weights."""

import copy
import pickle

import numpy as np
import pytest

import adamkit.numpy
from adamkit.kernels import quantized

COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda optimizer: pickle.loads(pickle.dumps(optimizer))}
STATE_DTYPES = [None, "int8", "bf16"] if quantized.available() else [None]


def make_optimizer(state_dtype):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(n).astype(np.float32) for n in (4097, 7, 17)]
    groups = [{"params": weights[:2]}, {"params": weights[2:], "lr": 3e-3, "maximize": True}]
    optimizer = adamkit.numpy.AdamW(groups, lr=1e-2, weight_decay=0.1, amsgrad=True, state_dtype=state_dtype,
                                    nonfinite_grads="skip")
    return optimizer, weights


def gradients(weights, step):
    rng = np.random.default_rng(step)
    return [rng.standard_normal(w.size).astype(np.float32) for w in weights]


@pytest.mark.parametrize("state_dtype", STATE_DTYPES)
@pytest.mark.parametrize("how", COPIES)
def test_a_copy_steps_as_the_original_and_leaves_it_alone(how, state_dtype):
    optimizer, weights = make_optimizer(state_dtype)
    for step in (1, 2):
        optimizer.step(gradients(weights, step))
    copied = COPIES[how](optimizer)
    copied_weights = [w for group in copied.param_groups for w in group["params"]]
    assert all(c is not w and np.array_equal(c, w) for c, w in zip(copied_weights, weights))
    assert (copied.state_dtype, copied.nonfinite_grads, copied.defaults) == (
        optimizer.state_dtype, optimizer.nonfinite_grads, optimizer.defaults)
    for ours, theirs in zip(copied.state, optimizer.state):
        assert ours.keys() == theirs.keys() and ours
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])

    before = [w.copy() for w in weights]
    copied.step(gradients(weights, 3))
    for w, b in zip(weights, before):
        np.testing.assert_array_equal(w, b)
    optimizer.step(gradients(weights, 3))
    for c, w in zip(copied_weights, weights):
        np.testing.assert_array_equal(c, w)
    for ours, theirs in zip(copied.state, optimizer.state):
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])
