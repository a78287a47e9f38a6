"""adamkit.numpy equals adamkit.torch bitwise: both hand the same arrays to the same backend."""

import inspect
import warnings

import numpy as np
import pytest

import adamkit.numpy
from adamkit.nonfinite import NonFiniteGradientWarning
from tests.cases import CASES, DTYPES, STEPS, gradients, group_order, initial_params, param_groups

torch = pytest.importorskip("torch")
import adamkit.torch  # noqa: E402

TORCH_ONLY_FLAGS = {
    "foreach", "fused", "capturable", "differentiable", "kahan_summation", "sparse_mode", "step_in_backward", "max_grad_norm",
}  # fmt: skip
NAMES = ("Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad", "RMSprop", "NAdam", "Adafactor")


def _twins(case, dtype, **extra):
    """The same case as a NumPy optimizer and a torch optimizer, on equal starting parameters."""
    start = initial_params(dtype)
    arrays = [p.copy() for p in start]
    tensors = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in start]
    numpy_opt = getattr(adamkit.numpy, case.optimizer)(param_groups(case, arrays), **case.hyper, **extra)
    torch_opt = getattr(adamkit.torch, case.optimizer)(param_groups(case, tensors), **case.hyper, **extra)
    return arrays, numpy_opt, tensors, torch_opt


def _step_both(arrays, numpy_opt, tensors, torch_opt, grads):
    """One step of each; ``grads`` is per size (``None`` = no gradient), as tests.cases builds them."""
    for tensor, grad in zip(tensors, grads):
        tensor.grad = None if grad is None else torch.from_numpy(grad.copy())
    torch_opt.step()
    numpy_opt.step(group_order(grads))


def _assert_same(arrays, numpy_opt, tensors, torch_opt):
    flat_tensors = group_order(tensors)
    for array, tensor, state in zip(group_order(arrays), flat_tensors, numpy_opt.state):
        np.testing.assert_array_equal(array, tensor.detach().numpy(), strict=True)
        torch_state = torch_opt.state[tensor]
        assert set(state) == set(torch_state)
        for key, value in torch_state.items():
            np.testing.assert_array_equal(state[key], value.numpy(), strict=True, err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_trajectory_and_state_equal_torch_front_end(case, dtype):
    arrays, numpy_opt, tensors, torch_opt = _twins(case, dtype)
    for grads in gradients(dtype, STEPS):
        _step_both(arrays, numpy_opt, tensors, torch_opt, grads)
    _assert_same(arrays, numpy_opt, tensors, torch_opt)
    assert [group["params"] for group in numpy_opt.param_groups] == [
        list(group["params"]) for group in param_groups(case, arrays)
    ]
    assert not all(np.array_equal(a, b) for a, b in zip(arrays, initial_params(dtype)))


@pytest.mark.parametrize("case", CASES[::3], ids=lambda case: case.id)
def test_missing_gradients_skip_their_parameter_as_in_torch(case):
    arrays, numpy_opt, tensors, torch_opt = _twins(case, "float64")
    for t, grads in enumerate(gradients("float64", 12)):
        # The parameter of size 7 has no gradient on even steps, the one of size 1 never has one.
        grads = [None if (i == 1 and t % 2 == 0) or i == 0 else grad for i, grad in enumerate(grads)]
        _step_both(arrays, numpy_opt, tensors, torch_opt, grads)
    _assert_same(arrays, numpy_opt, tensors, torch_opt)
    np.testing.assert_array_equal(arrays[0], initial_params("float64")[0])
    if numpy_opt.spec.counts_steps:
        assert numpy_opt.state[2]["step"] == 6.0  # size 7 is first in group 1, after sizes 1 and 17


@pytest.mark.parametrize("case", CASES[1::3], ids=lambda case: case.id)
def test_nonfinite_skip_policy_equals_torch_front_end(case):
    arrays, numpy_opt, tensors, torch_opt = _twins(case, "float32", nonfinite_grads="skip")
    for t, grads in enumerate(gradients("float32", 10)):
        if t in (3, 7):
            grads[3] = grads[3].copy()
            grads[3][5] = np.nan if t == 3 else -np.inf
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _step_both(arrays, numpy_opt, tensors, torch_opt, grads)
        skipped = [w for w in caught if issubclass(w.category, NonFiniteGradientWarning)]
        assert len(skipped) == (2 if t in (3, 7) else 0)
        assert all("param_groups[1]['params'][1]" in str(w.message) for w in skipped)
    assert numpy_opt.skipped_steps == torch_opt.skipped_steps == 2
    _assert_same(arrays, numpy_opt, tensors, torch_opt)
    assert all(np.isfinite(a).all() for a in arrays)


@pytest.mark.parametrize("name", NAMES)
def test_signature_is_the_torch_front_ends_without_device_flags(name):
    torch_parameters = {
        key: parameter
        for key, parameter in inspect.signature(getattr(adamkit.torch, name)).parameters.items()
        if key not in TORCH_ONLY_FLAGS
    }
    # Every NumPy class takes state_dtype (None alone where compact state is not taken); a torch
    # class whose rule has no kernel (Adafactor) does not.
    numpy_parameters = {
        key: parameter
        for key, parameter in inspect.signature(getattr(adamkit.numpy, name)).parameters.items()
        if key in torch_parameters or key != "state_dtype"
    }
    assert list(numpy_parameters) == list(torch_parameters)
    for key, parameter in torch_parameters.items():
        assert numpy_parameters[key].default == parameter.default, key
        if parameter.kind is parameter.KEYWORD_ONLY:
            assert numpy_parameters[key].kind is parameter.KEYWORD_ONLY, key
