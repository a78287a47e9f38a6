"""Adafactor on matrices and stacks of matrices, which the shared table (vectors) does not reach:
the rule, the float64 transcription and torch.optim.Adafactor agree to 1e-12 in float64 over
60 steps, with non-default hyperparameters, in two parameter groups."""

import numpy as np
import pytest

from tests.reference.adafactor import adafactor as reference_adafactor
from tests.rules._drive import group_hyperparameters, run_rule

torch = pytest.importorskip("torch")

SHAPES = ((1,), (7,), (17,), (4097,), (7, 17), (3, 5, 4), (64, 65), ())
GROUP_OF_SHAPE = (0, 1, 0, 1, 0, 1, 0, 1)
HYPER = dict(lr=0.05, weight_decay=0.1, d=1.5, beta2_decay=-0.6, eps=(1e-20, 1e-2))
SECOND_GROUP = dict(lr=0.2, eps=(None, 1e-3), maximize=True)
STEPS = 60
RELATIVE = 1e-12


def _inputs():
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(shape) for shape in SHAPES]
    scales = 10.0 ** rng.uniform(-4, 2, size=len(SHAPES))
    grads = []
    for _ in range(STEPS):
        step = [np.asarray(rng.standard_normal(shape) * scale) for shape, scale in zip(SHAPES, scales)]
        for grad in step:
            grad[rng.random(grad.shape) < 0.05] = 0.0
        grads.append(step)
    return params, grads


def _assert_close(actual, expected, what):
    error = np.max(np.abs(np.asarray(actual) - expected))
    assert error <= RELATIVE * np.max(np.abs(expected)) + 1e-300, f"{what}: max error {error:.3g}"


def _hyper(index):
    return {**HYPER, **(SECOND_GROUP if GROUP_OF_SHAPE[index] else {})}


@pytest.fixture(scope="module")
def torch_run():
    params, grads = _inputs()
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    groups = [
        {"params": [t for t, g in zip(tensors, GROUP_OF_SHAPE) if g == 0]},
        {"params": [t for t, g in zip(tensors, GROUP_OF_SHAPE) if g == 1], **SECOND_GROUP},
    ]
    optimizer = torch.optim.Adafactor(groups, **HYPER)
    for step_grads in grads:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad)
        optimizer.step()
    return params, grads, [(t.detach().numpy(), optimizer.state[t]) for t in tensors]


@pytest.mark.parametrize("index", range(len(SHAPES)), ids=[str(shape) for shape in SHAPES])
def test_reference_and_rule_match_torch(torch_run, index):
    params, grads, finals = torch_run
    param_grads = [step[index] for step in grads]
    expected, torch_state = finals[index]
    reference, reference_state = reference_adafactor(params[index], param_grads, **_hyper(index))
    rule, rule_state = run_rule("Adafactor", group_hyperparameters("Adafactor", _hyper(index)), params[index], param_grads)
    _assert_close(reference, expected, "reference param")
    _assert_close(rule, expected, "rule param")
    assert reference_state.pop("step") == float(torch_state["step"]) == STEPS
    assert set(reference_state) == set(rule_state) == set(torch_state) - {"step"}
    for key, value in torch_state.items():
        if key != "step":
            _assert_close(reference_state[key], value.numpy(), f"reference {key}")
            _assert_close(rule_state[key], value.numpy(), f"rule {key}")
