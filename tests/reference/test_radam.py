"""RAdam over 60 steps: the transcription, ``adamkit.rules.radam`` (through both front ends) and
torch.optim.RAdam (for-loop and foreach) agree to 1e-12 in float64, with both forms of weight
decay, two parameter groups, sizes 1, 7, 17 and 4097, and steps on both sides of ρ_t = 5."""

import numpy as np
import pytest

import adamkit.numpy
from adamkit.rules import radam_scalars
from tests.cases import GROUP_OF_SIZE, gradients, group_order, initial_params
from tests.reference.radam import radam

torch = pytest.importorskip("torch")
import adamkit.torch  # noqa: E402

STEPS = 60
RELATIVE = 1e-12
HYPER = (
    {"lr": 2e-2, "betas": (0.7, 0.95), "eps": 1e-4, "weight_decay": 0.1},
    {"lr": 1e-2, "betas": (0.85, 0.99), "weight_decay": 0.2, "decoupled_weight_decay": True, "maximize": True},
)
# The second group's overrides: another learning rate, and a β2 whose ρ∞ = 4 is never above
# 5 (momentum SGD throughout), or the other form of weight decay.
SECOND_GROUP = ({"lr": 5e-3, "betas": (0.9, 0.6)}, {"decoupled_weight_decay": False, "eps": 1e-6})


def assert_close(actual, expected, what):
    error = np.max(np.abs(actual - expected))
    assert error <= RELATIVE * np.max(np.abs(expected)), f"{what}: max error {error:.3g}"


def test_the_steps_cross_the_threshold():
    for hyper in HYPER:
        rectified = [radam_scalars(float(t), hyper["betas"]).rect is not None for t in range(1, STEPS + 1)]
        assert not rectified[0] and rectified[-1] and rectified.index(True) > 2


def groups(tensors, index):
    return [
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == 0]},
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == 1], **SECOND_GROUP[index]},
    ]


def torch_run(cls, index, params, grads, **flags):
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = cls(groups(tensors, index), **HYPER[index], **flags)
    for step_grads in grads:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad)
        optimizer.step()
    return [t.detach().numpy() for t in tensors], [optimizer.state[t] for t in tensors]


def numpy_run(index, params, grads):
    arrays = [p.copy() for p in params]
    optimizer = adamkit.numpy.RAdam(groups(arrays, index), **HYPER[index])
    for step_grads in grads:
        optimizer.step(group_order(step_grads))
    return arrays


@pytest.mark.parametrize("index", range(len(HYPER)))
def test_radam_matches_reference_and_torch(index):
    params, grads = initial_params("float64"), gradients("float64", steps=STEPS)
    expected = []
    for i, param in enumerate(params):
        hyper = {**HYPER[index], **(SECOND_GROUP[index] if GROUP_OF_SIZE[i] else {})}
        expected.append(radam(param, [g[i] for g in grads], **hyper))
    runs = {
        "torch for-loop": torch_run(torch.optim.RAdam, index, params, grads, foreach=False),
        "torch foreach": torch_run(torch.optim.RAdam, index, params, grads, foreach=True),
        "adamkit.torch": torch_run(adamkit.torch.RAdam, index, params, grads),
    }
    for name, (finals, states) in runs.items():
        for i, (final, state, (theta, reference_state)) in enumerate(zip(finals, states, expected)):
            assert_close(final, theta, f"{name} param {i}")
            assert float(state["step"]) == reference_state["step"]
            for key in ("exp_avg", "exp_avg_sq"):
                assert_close(state[key].numpy(), reference_state[key], f"{name} {key} {i}")
    for i, (final, (theta, _)) in enumerate(zip(numpy_run(index, params, grads), expected)):
        assert_close(final, theta, f"adamkit.numpy param {i}")
