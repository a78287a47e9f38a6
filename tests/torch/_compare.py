"""Helpers shared by the torch front-end tests: building parameters, feeding gradients,
and comparing tensors, optimizer states and trajectories."""

import copy

import pytest
import torch

import adamkit.torch
from adamkit import specs
from tests.cases import CASES
from tests.torch._rule_optimizer import rule_optimizer

# Max-norm relative tolerances of the brief: float64 (and complex128) must agree to 1e-12,
# float32 (and complex64) to 1e-6.
TOLERANCE = {
    torch.float32: 1e-6,
    torch.float64: 1e-12,
    torch.complex64: 1e-6,
    torch.complex128: 1e-12,
}

OPTIMIZERS = ("Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad", "RMSprop", "Adafactor", "NAdam", "RAdam")
# Those the element-wise C kernels step, which alone take Kahan summation, bfloat16 on the CPU
# and the multi-tensor device path (Adafactor's own kernel takes none of them).
NATIVE_OPTIMIZERS = tuple(name for name in OPTIMIZERS if specs.BY_NAME[name].native)

# Hyperparameters that exercise every state slot of each optimizer.
RICH = {
    "Adam": dict(lr=1e-2, weight_decay=0.1, amsgrad=True),
    "AdamW": dict(lr=1e-2, weight_decay=0.1, amsgrad=True),
    "Adamax": dict(lr=1e-2, weight_decay=0.1),
    "Adadelta": dict(lr=0.5, rho=0.8, weight_decay=0.1),
    "SGD": dict(lr=1e-2, momentum=0.9, nesterov=True),
    "Adagrad": dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "RMSprop": dict(lr=1e-2, centered=True, momentum=0.9),
    "Adafactor": dict(lr=0.05, weight_decay=0.1, d=1.5, beta2_decay=-0.6, eps=(1e-20, 1e-2)),
    "NAdam": dict(lr=1e-2, weight_decay=0.1, momentum_decay=0.05),
    "RAdam": dict(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.9)),
    "ADOPT": dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, maximize=True),
}


def both(name):
    """``(torch.optim.<name>, adamkit.torch.<name>)``; where torch.optim has no ``name``, the
    rule itself stands in for torch's class (:mod:`tests.torch._rule_optimizer`)."""
    torch_class = getattr(torch.optim, name, None) or rule_optimizer(name)
    return torch_class, getattr(adamkit.torch, name)


TORCH_CASES = tuple(case for case in CASES if hasattr(torch.optim, case.optimizer))
"""The cases of the shared table whose optimizer torch.optim has, to compare with it."""
TORCH_SPECS = tuple(spec for spec in specs.ALL if hasattr(torch.optim, spec.name))
"""The specs of the optimizers torch.optim has."""


def make_params(arrays):
    """Fresh leaf parameters holding copies of the NumPy ``arrays``."""
    return [torch.nn.Parameter(torch.tensor(array)) for array in arrays]


def set_grads(params, grads):
    """Give each parameter a fresh copy of its gradient (a NumPy array or a tensor)."""
    for param, grad in zip(params, grads, strict=True):
        param.grad = torch.as_tensor(grad).clone()


def bits(tensor):
    """The raw bits of ``tensor``, so that NaN, -0.0 and +0.0 are compared exactly."""
    tensor = tensor.detach()
    if tensor.is_complex():
        tensor = torch.view_as_real(tensor)
    integer = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]
    return tensor.contiguous().view(integer)


def assert_bitwise_equal(actual, expected, what=""):
    if not torch.is_tensor(expected):
        assert type(actual) is type(expected) and actual == expected, f"{what}: {actual!r} != {expected!r}"
        return
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert torch.equal(bits(actual), bits(expected)), f"{what}: not bitwise equal"


def snapshot(optimizer):
    """A deep copy of everything an optimizer holds: its state, groups and parameter values."""
    return {
        "state": {
            index: copy.deepcopy(dict(optimizer.state[param]))
            for index, param in enumerate(p for g in optimizer.param_groups for p in g["params"])
            if param in optimizer.state
        },
        "param_groups": [
            {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            for group in optimizer.param_groups
        ],
        "param_ids": [[id(p) for p in group["params"]] for group in optimizer.param_groups],
        "params": [p.detach().clone() for g in optimizer.param_groups for p in g["params"]],
    }


def assert_refused(optimizer, action, error, words):
    """Assert that ``action()`` raises ``error`` with each of ``words`` in its message and
    leaves ``optimizer`` exactly as it was; return the exception."""
    before = snapshot(optimizer)
    with pytest.raises(error) as raised:
        action()
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"
    assert_unchanged(optimizer, before)
    return raised.value


def assert_step_refused(optimizer, error, words):
    """:func:`assert_refused` for ``optimizer.step()``."""
    return assert_refused(optimizer, optimizer.step, error, words)


def assert_unchanged(optimizer, before):
    """Assert that ``optimizer`` holds exactly what the :func:`snapshot` ``before`` recorded."""
    after = snapshot(optimizer)
    assert after["param_ids"] == before["param_ids"], "the parameter groups' tensors changed"
    assert len(after["param_groups"]) == len(before["param_groups"]), "the number of groups changed"
    for index, (now, then) in enumerate(zip(after["param_groups"], before["param_groups"])):
        assert now.keys() == then.keys(), f"the keys of param_groups[{index}] changed"
        for key, value in then.items():
            if torch.is_tensor(value):
                assert_bitwise_equal(now[key], value, f"param_groups[{index}][{key!r}]")
            else:
                assert now[key] == value, f"param_groups[{index}][{key!r}] changed: {now[key]!r} != {value!r}"
    assert after["state"].keys() == before["state"].keys(), "state was created or removed"
    for index, state in before["state"].items():
        assert after["state"][index].keys() == state.keys(), f"state keys of parameter {index} changed"
        for key, value in state.items():
            assert_bitwise_equal(after["state"][index][key], value, f"state[{index}][{key!r}]")
    for index, (now, then) in enumerate(zip(after["params"], before["params"], strict=True)):
        assert_bitwise_equal(now, then, f"parameter {index}")


def assert_load_refused(optimizer, state_dict, error, words):
    """:func:`assert_refused` for ``optimizer.load_state_dict(state_dict)``."""
    assert_refused(optimizer, lambda: optimizer.load_state_dict(state_dict), error, words)


class Agreement:
    """Checks that two runs agree step after step, within ``rtol`` of each quantity's scale.

    The scale of a quantity is the largest magnitude its reference has had so far in the run,
    so that a parameter which passes close to zero (where both runs carry the same absolute
    rounding error of the earlier, larger values) is not held to a tighter relative bound than
    its own history allows. The error bound is ``max|actual - expected| <= rtol * scale``.
    """

    def __init__(self, rtol):
        self.rtol = rtol
        self.scales = {}

    def check(self, name, actual, expected):
        assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
        assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype} != {expected.dtype}"
        actual, expected = actual.detach(), expected.detach()
        scale = max(self.scales.get(name, 0.0), expected.abs().max().item())
        self.scales[name] = scale
        error = (actual - expected).abs().max().item()
        assert error <= self.rtol * scale, (
            f"{name}: max|a-b| = {error:.3e} > {self.rtol:g} * {scale:.3e}"
        )

    def check_all(self, prefix, actuals, expecteds):
        for index, (actual, expected) in enumerate(zip(actuals, expecteds, strict=True)):
            self.check(f"{prefix}[{index}]", actual, expected)

    def check_states(self, actual_optimizer, expected_optimizer):
        """Same state keys, equal ``step`` counts and agreeing state tensors, parameter by parameter."""
        actual_params = [p for g in actual_optimizer.param_groups for p in g["params"]]
        expected_params = [p for g in expected_optimizer.param_groups for p in g["params"]]
        for index, (mine, theirs) in enumerate(zip(actual_params, expected_params, strict=True)):
            ours = actual_optimizer.state.get(mine, {})
            torchs = expected_optimizer.state.get(theirs, {})
            assert ours.keys() == torchs.keys(), f"state[{index}] keys {sorted(ours)} != {sorted(torchs)}"
            for key, expected in torchs.items():
                actual = ours[key]
                if key == "step":
                    assert_step_equal(actual, expected, f"state[{index}]['step']")
                else:
                    self.check(f"state[{index}][{key!r}]", actual, expected)


def assert_step_equal(actual, expected, what="step"):
    assert torch.is_tensor(actual) and actual.dim() == 0, f"{what} is not a 0-d tensor: {actual!r}"
    assert actual.dtype == expected.dtype and actual.device == expected.device, what
    assert actual.item() == expected.item(), f"{what}: {actual.item()} != {expected.item()}"
