"""adamkit.numpy with state_dtype="int8" and "bf16" equals adamkit.torch with the same
state_dtype bit for bit: parameters, codes, scales, bfloat16 state and step counts."""

import numpy as np
import pytest

from adamkit.kernels import quantized
from adamkit.numpy._cached_plan import StepPlan
from tests.numpy.test_compact_state import GROUP_SIZES, HYPERS, SECOND_GROUP, grads_at, hyper_id, make, start_params

torch = pytest.importorskip("torch")
import adamkit.torch  # noqa: E402

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")
STEPS = 12


def as_tensors(params):
    return [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]


def make_torch(name, hyper, tensors, state_dtype):
    """The torch twin of tests.numpy.test_compact_state.make."""
    groups = [{"params": tensors[: GROUP_SIZES[0]]}, {"params": tensors[GROUP_SIZES[0] :], **SECOND_GROUP}]
    return getattr(adamkit.torch, name)(groups, **hyper, state_dtype=state_dtype)


def as_numpy(tensor):
    """A tensor's values, with bfloat16 as its bit patterns (uint16), as the NumPy front end holds it."""
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(np.uint16)
    return tensor.numpy()


def compact_tensors_after_checking_equal(params, tensors, numpy_opt, torch_opt):
    """Assert that both front ends hold the same parameters and state, bit for bit; return how
    many parameters have compact state."""
    compact = 0
    for param, tensor, state in zip(params, tensors, numpy_opt.state):
        np.testing.assert_array_equal(param, tensor.detach().numpy(), strict=True)
        torch_state = torch_opt.state[tensor]
        assert set(state) == set(torch_state)
        for key, value in torch_state.items():
            np.testing.assert_array_equal(state[key], as_numpy(value), strict=True, err_msg=key)
        compact += any(value.dtype != param.dtype for key, value in state.items() if key != "step")
    return compact


def step_both(torch_opt, numpy_opt, tensors, steps):
    """Step both front ends ``steps`` times with the gradients of :func:`grads_of_step`."""
    for step in range(steps):
        grads = grads_of_step(step)
        for tensor, grad in zip(tensors, grads):
            tensor.grad = None if grad is None else torch.from_numpy(grad.copy())
        torch_opt.step()
        numpy_opt.step(grads)


def grads_of_step(step):
    """In the first half, some parameters have no gradient at some steps: on odd steps the
    70000-element one, so that the 70x80 one is the first bfloat16 parameter stepped in its
    group. In the second half every parameter has one, and the NumPy optimizer's plan steps."""
    grads = grads_at(step)
    if step < STEPS // 2 and step % 2:
        grads[4] = None
    if step < STEPS // 2 and step % 3 == 2:
        grads[0] = None
    return grads


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
@pytest.mark.parametrize("entry", HYPERS, ids=hyper_id)
def test_numpy_compact_state_equals_torch_bitwise(entry, state_dtype, monkeypatch):
    planned = []
    original = StepPlan.step
    monkeypatch.setattr(StepPlan, "step", lambda *args: planned.append(original(*args)) or planned[-1])
    params = start_params()
    tensors = as_tensors(params)
    torch_opt = make_torch(*entry, tensors, state_dtype)
    numpy_opt = make(*entry, params, state_dtype)
    step_both(torch_opt, numpy_opt, tensors, STEPS)
    assert compact_tensors_after_checking_equal(params, tensors, numpy_opt, torch_opt) == 3
    assert sum(planned) >= STEPS // 2 - 2


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_a_numpy_float32_checkpoint_converts_as_torch_converts_one(state_dtype):
    """A float32 checkpoint loaded into each front end's compact optimizer gives the same state."""
    name, hyper = HYPERS[0]
    params = start_params()
    plain = make(name, hyper, [p.copy() for p in params], None)
    tensors = as_tensors(params)
    torch_plain = make_torch(name, hyper, tensors, None)
    for step in range(3):
        grads = grads_at(step)
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.from_numpy(grad.copy())
        plain.step(grads)
        torch_plain.step()
    numpy_opt = make(name, hyper, [p.copy() for p in params], state_dtype)
    numpy_opt.load_state_dict(plain.state_dict())
    torch_opt = make_torch(name, hyper, tensors, state_dtype)
    torch_opt.load_state_dict(torch_plain.state_dict())
    for tensor, state in zip(tensors, numpy_opt.state):
        assert set(state) == set(torch_opt.state[tensor])
        for key, value in torch_opt.state[tensor].items():
            np.testing.assert_array_equal(state[key], as_numpy(value), strict=True, err_msg=key)


OTHER_RULES = (
    ("Adamax", dict(lr=2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=True), {"lr": 5e-3}),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05), {"lr": 0.3, "rho": 0.95}),
)


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
@pytest.mark.parametrize("name, hyper, second", OTHER_RULES, ids=[entry[0] for entry in OTHER_RULES])
def test_numpy_compact_adamax_and_adadelta_equal_torch_bitwise(name, hyper, second, state_dtype):
    params = start_params()
    tensors = as_tensors(params)

    def groups(values):
        return [{"params": values[: GROUP_SIZES[0]]}, {"params": values[GROUP_SIZES[0] :], **second}]

    torch_opt = getattr(adamkit.torch, name)(groups(tensors), **hyper, state_dtype=state_dtype)
    numpy_opt = getattr(adamkit.numpy, name)(groups(params), **hyper, state_dtype=state_dtype)
    step_both(torch_opt, numpy_opt, tensors, 8)
    assert compact_tensors_after_checking_equal(params, tensors, numpy_opt, torch_opt) == 3
