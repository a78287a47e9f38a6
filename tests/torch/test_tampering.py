"""What a user can do to tensors between steps: adamkit.torch gives torch.optim's result or an
error, never a crash or a silent wrong result (the adversarial tester's cases, numbered as in
the issue "Safe whatever the user does").

Each optimizer is stepped twice before the change, so that its cached plan
(:mod:`adamkit.torch._cached_plan`) is in use: the change must be seen by the plan's re-checks, and the
full path must then check like torch. A refused step must leave every parameter and all state
as it was.
"""

import pytest
import torch

import adamkit.torch
from adamkit.torch._checks import MismatchError
from tests.torch._compare import assert_step_refused

SIZES = [1, 7, 17, 4097]
HYPERPARAMETERS = {"lr": 3e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}


def _stepped(cls, size, steps=2, seed=0, dtype=torch.float32, **options):
    """Two parameter groups (the tampered one first), stepped ``steps`` times."""
    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(size, generator=generator, dtype=dtype)) for _ in range(3)]
    optimizer = cls([{"params": params[:2]}, {"params": params[2:], "lr": 1e-2}], **{**HYPERPARAMETERS, **options})
    for _ in range(steps):
        _new_grads(params, generator)
        optimizer.step()
    return params, optimizer, generator


def _new_grads(params, generator):
    for param in params:
        param.grad = torch.randn(param.shape, generator=generator, dtype=param.dtype)


def _pair(size, tamper, steps_after=3, amsgrad=True, foreach=False):
    """The same run, and ``tamper(params, optimizer)`` after two steps, on torch.optim.AdamW and
    adamkit.torch.AdamW; returns both ``(params, optimizer)``."""
    runs = []
    for cls, extra in ((torch.optim.AdamW, {"foreach": foreach}), (adamkit.torch.AdamW, {})):
        params, optimizer, generator = _stepped(cls, size, amsgrad=amsgrad, **extra)
        tamper(params, optimizer)
        for _ in range(steps_after):
            _new_grads(params, generator)
            optimizer.step()
        runs.append((params, optimizer))
    return runs


def _assert_close(ours, theirs):
    (our_params, our_optimizer), (their_params, their_optimizer) = ours, theirs
    for mine, torchs in zip(our_params, their_params, strict=True):
        torch.testing.assert_close(mine, torchs, rtol=1e-6, atol=1e-6)
    for mine, torchs in zip(our_params, their_params, strict=True):
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            torch.testing.assert_close(our_optimizer.state[mine][key], their_optimizer.state[torchs][key], rtol=1e-6, atol=1e-6)


def _assert_refused(optimizer, *words, error=RuntimeError):
    return assert_step_refused(optimizer, error, words)


# --- 1. new storage under the same state object: torch steps it, so do we ---------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key", ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
def test_a_state_slot_given_new_storage_is_stepped_like_torch(size, key):
    def tamper(params, optimizer):
        slot = optimizer.state[params[0]][key]
        slot.data = slot.data.clone()

    theirs, ours = _pair(size, tamper)
    _assert_close(ours, theirs)


@pytest.mark.parametrize("size", SIZES)
def test_a_parameter_given_new_storage_of_its_size_is_stepped_like_torch(size):
    def tamper(params, optimizer):
        params[1].data = params[1].data.clone() * 0.5

    theirs, ours = _pair(size, tamper)
    _assert_close(ours, theirs)


# --- 2, 7. a parameter that changed size ------------------------------------------------------


@pytest.mark.parametrize("size", [7, 1000])
def test_a_grown_parameter_with_its_gradient_is_refused_naming_the_state(size):
    params, optimizer, _ = _stepped(adamkit.torch.Adam, size)
    params[0].data = torch.randn(200 * size)
    params[0].grad = torch.randn(200 * size)
    error = _assert_refused(optimizer, "param_groups[0]['params'][0]", "exp_avg")
    assert isinstance(error, MismatchError)


def test_a_parameter_cut_to_a_slice_with_the_old_gradient_is_refused():
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 100)
    params[0].grad = torch.randn(100)
    params[0].data = params[0].data[:50]  # the same data pointer, fewer elements
    _assert_refused(optimizer, "param_groups[0]['params'][0]", "(100,)", "(50,)")


def test_a_reshaped_parameter_with_state_of_the_old_shape_is_refused():
    params, optimizer, generator = _stepped(adamkit.torch.Adam, 12)
    params[1].data = params[1].data.view(3, 4)
    params[1].grad = torch.randn(3, 4, generator=generator)
    _assert_refused(optimizer, "param_groups[0]['params'][1]", "exp_avg")


# --- 3, 8, 10. a state slot of the wrong size, dtype or layout --------------------------------


@pytest.mark.parametrize(
    ("options", "key", "replacement"),
    [
        ({}, "exp_avg", lambda old: torch.zeros(10)),
        ({}, "exp_avg", lambda old: old.half()),
        ({}, "exp_avg_sq", lambda old: old.double()),
        ({}, "max_exp_avg_sq", lambda old: old.reshape(-1, 1)),
        ({}, "exp_avg", lambda old: old.resize_(0)),
        ({}, "exp_avg", lambda old: 0.0),
        ({"state_dtype": "int8"}, "exp_avg_absmax", lambda old: torch.zeros(3)),
        ({"state_dtype": "int8"}, "exp_avg_codes", lambda old: torch.zeros(old.shape)),
        ({"state_dtype": "int8"}, "exp_avg_sq_codes", lambda old: old.to(torch.int8)),
        ({"state_dtype": "bf16"}, "exp_avg", lambda old: torch.zeros(10, dtype=torch.bfloat16)),
        ({"state_dtype": "bf16"}, "exp_avg_sq", lambda old: old.float()),
    ],
    ids=[
        "10-elements", "float16", "float64", "2-d", "resized-to-0", "a-float", "int8-scales-of-3",
        "int8-codes-as-float32", "uint8-codes-as-int8", "bf16-of-10", "bf16-as-float32",
    ],
)
def test_a_state_slot_that_does_not_fit_is_refused(options, key, replacement):
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 8192, amsgrad=True, **options)
    state = optimizer.state[params[0]]
    state[key] = replacement(state[key])
    _assert_refused(optimizer, "param_groups[0]['params'][0]", repr(key))


@pytest.mark.parametrize(("removed", "kept"), [("exp_avg_absmax", "exp_avg_codes"), ("exp_avg_codes", "exp_avg_absmax")])
def test_8_bit_codes_and_scales_must_come_together(removed, kept):
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 8192, state_dtype="int8")
    del optimizer.state[params[1]][removed]
    _assert_refused(optimizer, "param_groups[0]['params'][1]", repr(kept), repr(removed))


def test_a_kahan_buffer_of_the_wrong_size_is_refused():
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 64, dtype=torch.bfloat16)
    optimizer.state[params[0]]["kahan_compensation"] = torch.zeros(10, dtype=torch.bfloat16)
    _assert_refused(optimizer, "param_groups[0]['params'][0]", "kahan_compensation")


# --- 9. non-contiguous state: torch's result ---------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_a_non_contiguous_state_slot_gives_torchs_result(size):
    def tamper(params, optimizer):
        state = optimizer.state[params[0]]
        spread = torch.zeros(2 * size)
        spread[::2] = state["exp_avg"]
        state["exp_avg"] = spread[::2]

    theirs, ours = _pair(size, tamper)
    _assert_close(ours, theirs)


# --- 11. a parameter listed twice is stepped twice, as torch's for-loop does --------------------


@pytest.mark.parametrize("size", SIZES)
def test_a_parameter_appended_to_its_group_again_is_stepped_twice_like_torch(size):
    def tamper(params, optimizer):
        optimizer.param_groups[0]["params"].append(params[0])

    theirs, ours = _pair(size, tamper)
    _assert_close(ours, theirs)
    assert ours[1].state[ours[0][0]]["step"].item() == 2 + 2 * 3


def test_a_group_with_a_repeated_parameter_warns_like_torch():
    param = torch.nn.Parameter(torch.ones(3))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        adamkit.torch.Adam([param, param])


# --- 12. a slot that becomes active later joins the compact layout ----------------------------


@pytest.mark.parametrize(("state_dtype", "dtype"), [("bf16", torch.bfloat16), ("int8", torch.uint8)])
def test_amsgrad_switched_on_mid_run_keeps_the_compact_layout(state_dtype, dtype):
    params, optimizer, generator = _stepped(adamkit.torch.Adam, 8192, state_dtype=state_dtype)
    reference, reference_optimizer, _ = _stepped(adamkit.torch.Adam, 8192, state_dtype=state_dtype)
    for group in optimizer.param_groups:
        group["amsgrad"] = True
    _new_grads(params, generator)
    for mine, theirs in zip(params, reference):
        theirs.grad = mine.grad.clone()
    optimizer.step()
    state = optimizer.state[params[0]]
    assert state["max_exp_avg_sq_codes" if state_dtype == "int8" else "max_exp_avg_sq"].dtype is dtype
    # Its first maximum is max(0, v) = v, so the step equals one without amsgrad.
    reference_optimizer.step()
    for mine, theirs in zip(params, reference):
        assert torch.isfinite(mine).all()
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


# --- 15. an expand()ed parameter --------------------------------------------------------------


def test_a_parameter_whose_elements_share_memory_is_refused_as_torch_does():
    param = torch.nn.Parameter(torch.zeros(10).expand(5, 10))
    param.grad = torch.ones(5, 10)
    for cls in (torch.optim.Adam, adamkit.torch.Adam):
        with pytest.raises(RuntimeError, match="single memory location"):
            cls([param]).step()
    assert torch.equal(param, torch.zeros(5, 10))


# --- aliasing between the tensors a step touches -------------------------------------------------


@pytest.mark.parametrize(
    "alias",
    [
        lambda params, state: state.__setitem__("exp_avg_sq", state["exp_avg"]),
        lambda params, state: state.__setitem__("exp_avg", params[0].data),
        lambda params, state: setattr(params[0], "grad", state["exp_avg"]),
        lambda params, state: state.__setitem__("exp_avg", params[1].data),
    ],
    ids=["two-slots", "slot-is-the-parameter", "gradient-is-a-slot", "slot-is-another-parameter"],
)
def test_tensors_of_a_step_that_share_memory_are_refused(alias):
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 33)
    alias(params, optimizer.state[params[0]])
    _assert_refused(optimizer, "single memory location")


def test_the_plan_notices_a_gradient_that_aliases_the_state_it_writes():
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 33, steps=3)
    assert optimizer._plans[0] is not None
    params[1].grad = optimizer.state[params[0]]["exp_avg_sq"]
    _assert_refused(optimizer, "single memory location")


# --- memory taken from under a tensor that keeps its shape ------------------------------------


@pytest.mark.parametrize("which", ["parameter", "state"])
def test_a_storage_resized_underneath_its_tensor_is_refused(which):
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 1000, steps=3)
    tensor = params[0] if which == "parameter" else optimizer.state[params[0]]["exp_avg_sq"]
    tensor.untyped_storage().resize_(0)
    with pytest.raises(RuntimeError, match="storage"):
        optimizer.step()


# --- a step count made negative between steps: torch raises (its bias correction's root is complex)


@pytest.mark.parametrize("value", [-5.0, float("nan"), float("inf")])
@pytest.mark.parametrize("in_place", [True, False])
def test_a_step_count_made_invalid_between_steps_is_refused(value, in_place):
    params, optimizer, _ = _stepped(adamkit.torch.Adam, 7, steps=3)
    state = optimizer.state[params[2]]
    if in_place:
        state["step"].fill_(value)
    else:
        state["step"] = torch.tensor(value)
    _assert_refused(optimizer, "param_groups[1]['params'][0]", "state['step']", error=ValueError)
