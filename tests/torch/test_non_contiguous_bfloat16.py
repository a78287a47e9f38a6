"""bfloat16 CPU parameters that are not contiguous (a transposed weight, a slice with a stride,
with gradients that are not contiguous either) are stepped, as torch.optim steps them: through
contiguous copies, with Kahan summation, and written back. Their state and compensation buffer
hold the elements in the parameter's logical order, so a parameter ends bit for bit where the
same values stepped as a contiguous parameter end, step after step. They are never stepped
through a cached plan: a parameter given new memory between steps is the one stepped."""

import pytest
import torch

import adamkit.torch
from adamkit.kernels import native
from adamkit.torch._kahan import KEY

from tests.torch._compare import NATIVE_OPTIMIZERS as OPTIMIZERS, RICH

pytestmark = pytest.mark.skipif(not native.available(), reason="bfloat16 parameters need the C kernels")

STEPS = 5
# Each parameter's contiguous values' shape, and how it is laid out in memory.
LAYOUTS = {
    "transposed": (17, 7),  # a (7, 17) weight's .t()
    "every other column": (6, 9),  # base[:, ::2] of a (6, 18) base
    "every other element": (4097,),  # base[::2] of 8194 elements
    "contiguous": (1,),
}
SECOND_GROUP = {"lr": 3e-3, "weight_decay": 0.05}


def _values(seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator).to(torch.bfloat16) for shape in LAYOUTS.values()]


def _laid_out(name, values):
    """A tensor of ``values`` laid out in memory as ``name`` says (a view into a larger base)."""
    if name == "transposed":
        return values.t().contiguous().t()
    if name == "every other column":
        base = torch.zeros(values.shape[0], 2 * values.shape[1], dtype=values.dtype)
        base[:, ::2] = values
        return base[:, ::2]
    if name == "every other element":
        base = torch.zeros(2 * values.numel(), dtype=values.dtype)
        base[::2] = values
        return base[::2]
    return values.clone()


def _params(strided):
    values = _values(0)
    if not strided:
        return [torch.nn.Parameter(value.clone()) for value in values]
    params = [torch.nn.Parameter(_laid_out(name, value)) for name, value in zip(LAYOUTS, values)]
    assert [p.is_contiguous() for p in params] == [False, False, False, True]
    return params


def _set_grads(params, step, strided):
    for name, param, grad in zip(LAYOUTS, params, _values(100 + step)):
        param.grad = _laid_out(name, grad) if strided else grad


def _run(name, strided, steps=STEPS, **options):
    params = _params(strided)
    groups = [{"params": params[:2]}, {"params": params[2:], **SECOND_GROUP}]
    optimizer = getattr(adamkit.torch, name)(groups, **RICH[name], **options)
    for step in range(steps):
        _set_grads(params, step, strided)
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("kahan_summation", [None, False])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_non_contiguous_bfloat16_parameter_ends_as_its_contiguous_twin_bit_for_bit(name, kahan_summation):
    strided, optimizer = _run(name, True, kahan_summation=kahan_summation)
    contiguous, twin = _run(name, False, kahan_summation=kahan_summation)
    for index, (param, other) in enumerate(zip(strided, contiguous)):
        assert param.dtype == torch.bfloat16 and torch.equal(param, other), index
        state, other_state = optimizer.state[param], twin.state[other]
        assert state.keys() == other_state.keys()
        assert (KEY in state) == (kahan_summation is None)
        for key, value in state.items():
            assert value.dtype == other_state[key].dtype and torch.equal(value, other_state[key]), (index, key)
    assert not torch.equal(strided[0], _params(True)[0])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_non_contiguous_bfloat16_parameter_steps_close_to_torch_optim(name):
    """torch.optim's for-loop steps bfloat16 in bfloat16 arithmetic, rounding every intermediate
    result; adamkit runs the rule in float32 and rounds once (:mod:`adamkit.torch._kahan`, whose
    tests check that against the rule bit for bit, as the test above checks a non-contiguous
    parameter against a contiguous one). One step of each agrees to a few roundings of the terms
    it adds: 8 units of bfloat16 roundoff (2**-8) of |start| + |torch's update| (found: at most
    2, and 5 for RMSprop's centered variance)."""
    ours, _ = _run(name, True, steps=1, kahan_summation=False)
    theirs, start = _params(True), _params(True)
    groups = [{"params": theirs[:2]}, {"params": theirs[2:], **SECOND_GROUP}]
    reference = getattr(torch.optim, name)(groups, **RICH[name], foreach=False)
    _set_grads(theirs, 0, True)
    reference.step()
    assert any(not torch.equal(their, first) for their, first in zip(theirs, start))
    for index, (mine, their, first) in enumerate(zip(ours, theirs, start)):
        update = their.detach().float() - first.float()
        error = (mine.detach().float() - their.detach().float()).abs()
        bound = 8 * 2.0**-8 * (first.float().abs() + update.abs())
        assert bool((error <= bound).all()), (index, float((error / bound.clamp_min(1e-30)).max()))


def test_non_contiguous_parameters_are_never_planned_and_new_memory_is_the_one_stepped():
    params, optimizer = _run("AdamW", True)
    assert optimizer._plans.get(0) is None and optimizer._plans.get(1) is None
    old = params[0].data
    kept = old.clone()
    params[0].data = _laid_out("transposed", old.float().mul(0.5).to(torch.bfloat16))
    replaced = params[0].detach().clone()
    _set_grads(params, STEPS, True)
    optimizer.step()
    assert torch.equal(old, kept)  # the parameter's former memory is not written
    assert not torch.equal(params[0].detach(), replaced)
    assert not params[0].is_contiguous()


def test_a_slot_made_like_a_transposed_parameter_pairs_its_elements_with_the_parameters():
    """torch.full_like keeps a transposed parameter's strides, so a slot made for it is transposed
    too; the step makes it contiguous before the kernels pair it with the parameter's contiguous
    copy. Adagrad makes its state when the optimizer is made, before any step."""
    strided, optimizer = _run("Adagrad", True, steps=0)
    assert not optimizer.state[strided[0]]["sum"].is_contiguous()
    contiguous, twin = _run("Adagrad", False, steps=0)
    for step in range(2):
        _set_grads(strided, step, True)
        _set_grads(contiguous, step, False)
        optimizer.step()
        twin.step()
    for param, other in zip(strided, contiguous):
        assert torch.equal(param, other)
        assert torch.equal(optimizer.state[param]["sum"], twin.state[other]["sum"])


def test_without_the_kernels_a_non_contiguous_bfloat16_parameter_is_refused_and_unchanged():
    param = torch.nn.Parameter(_laid_out("transposed", _values(0)[0]))
    param.grad = torch.ones_like(param)
    before = param.detach().clone()
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[0\] is bfloat16"):
        adamkit.torch.Adam([param], fused=False).step()
    assert torch.equal(param, before)
