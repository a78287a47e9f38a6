"""Kahan summation for bfloat16 parameters in the torch front end (``kahan_summation=``): on by
default for bfloat16, off with ``False``; the buffer is optimizer state that checkpoints keep,
and the trajectory is the kernels' compensated store after the reference rule, bit for bit."""

import copy

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit.kernels import native
from adamkit.specs import SCALAR_STATE_KEYS
from adamkit.torch._cached_plan import GroupPlan
from tests.cases import NATIVE_CASES as CASES, GROUP_OF_SIZE, gradients, initial_params, param_groups
from tests.kernels.bfloat16 import reference_step, round_to_bfloat16
from tests.kernels.trajectories import tensor_count
from tests.torch._compare import NATIVE_OPTIMIZERS as OPTIMIZERS, RICH, assert_bitwise_equal, assert_unchanged, snapshot

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")

KEY = "kahan_compensation"
STEPS = 12


def _bits(tensor):
    return tensor.detach().contiguous().view(torch.int16).numpy().view(np.uint16).copy()


def _bfloat16_params():
    return [torch.nn.Parameter(torch.from_numpy(p).to(torch.bfloat16)) for p in initial_params("float32")]


def _train(case, steps=STEPS, params=None, optimizer=None, first_step=0, **options):
    """Train bfloat16 parameters on the shared gradients, steps ``first_step`` to ``steps``."""
    params = _bfloat16_params() if params is None else params
    if optimizer is None:
        optimizer = getattr(adamkit.torch, case.optimizer)(param_groups(case, params), **case.hyper, **options)
    for grads in gradients("float32", steps)[first_step:]:
        for param, grad in zip(params, grads):
            param.grad = torch.from_numpy(grad).to(param.dtype)
        optimizer.step()
    return params, optimizer


def _reference(case, steps=STEPS, kahan=True):
    """The expected bits of parameters, state and compensation, per parameter (in size order)."""
    spec = getattr(adamkit.torch, case.optimizer).spec
    hypers = [{**spec.defaults, **case.hyper}, {**spec.defaults, **case.hyper, **case.second_group}]
    params = [round_to_bfloat16(p) for p in initial_params("float32")]
    states = []
    for param, group in zip(params, GROUP_OF_SIZE):
        slots = [slot for slot in spec.active_slots(hypers[group]) if slot.fill is not None]
        states.append(
            {s.key: round_to_bfloat16(np.full(param.shape, s.initial_value(hypers[group]), np.float32)) for s in slots}
        )
    compensations = [np.zeros(p.shape, np.uint16) for p in params] if kahan else None
    for t, grads in enumerate(gradients("float32", steps)):
        grads = [round_to_bfloat16(g) for g in grads]
        for group, hyper in enumerate(hypers):
            indices = [i for i, g in enumerate(GROUP_OF_SIZE) if g == group]
            reference_step(
                spec,
                spec.rule_arguments(hyper),
                [params[i] for i in indices],
                [grads[i] for i in indices],
                [states[i] for i in indices],
                [tensor_count(spec, hyper, t + 1) for _ in indices],
                "bfloat16",
                None if compensations is None else [compensations[i] for i in indices],
            )
    return params, states, compensations


def _assert_matches_reference(params, optimizer, expected):
    expected_params, expected_states, expected_compensations = expected
    for i, param in enumerate(params):
        np.testing.assert_array_equal(_bits(param), expected_params[i], err_msg=f"params[{i}]")
        state = optimizer.state[param]
        rule_keys = {key for key in state if key not in SCALAR_STATE_KEYS and key != KEY}
        assert rule_keys == expected_states[i].keys()
        for key in rule_keys:
            np.testing.assert_array_equal(_bits(state[key]), expected_states[i][key], err_msg=f"state[{i}][{key!r}]")
        if expected_compensations is None:
            assert KEY not in state
        else:
            assert state[KEY].dtype == torch.bfloat16 and state[KEY].shape == param.shape
            np.testing.assert_array_equal(_bits(state[KEY]), expected_compensations[i], err_msg=f"compensation[{i}]")


@pytest.fixture
def planned_steps(monkeypatch):
    calls = []
    original = GroupPlan.step

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GroupPlan, "step", counting)
    return calls


@pytest.mark.parametrize("kahan_summation", [None, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bfloat16_parameters_are_compensated_and_match_the_reference(case, kahan_summation, planned_steps):
    params, optimizer = _train(case, kahan_summation=kahan_summation)
    assert len(planned_steps) == 2 * (STEPS - 1)  # every step after the first is the cached call
    _assert_matches_reference(params, optimizer, _reference(case))


@pytest.mark.parametrize("case", CASES[::3], ids=lambda c: c.id)
def test_kahan_summation_false_rounds_each_update_plainly(case):
    params, optimizer = _train(case, kahan_summation=False)
    _assert_matches_reference(params, optimizer, _reference(case, kahan=False))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_buffer_is_created_on_the_first_step_and_holds_what_rounding_lost(name):
    start = torch.linspace(-1, 1, 17).to(torch.bfloat16)
    grad = torch.linspace(0.5, -0.25, 17).to(torch.bfloat16)
    # Adagrad's accumulator starts at a value bfloat16 holds exactly, as float32 state does.
    hyper = {**RICH[name], "initial_accumulator_value": 0.125} if name == "Adagrad" else RICH[name]
    param = torch.nn.Parameter(start.clone())
    optimizer = getattr(adamkit.torch, name)([param], **hyper)
    assert KEY not in optimizer.state.get(param, {})  # not even with Adagrad's eager state
    param.grad = grad.clone()
    optimizer.step()
    buffer = optimizer.state[param][KEY]
    assert buffer.dtype == torch.bfloat16 and buffer.shape == param.shape and buffer.is_contiguous()
    # One float32 step from the same values: the buffer started at zero, so parameter plus
    # buffer is that step's result, to within the rounding of the buffer to bfloat16.
    exact = torch.nn.Parameter(start.float())
    exact.grad = grad.float()
    getattr(adamkit.torch, name)([exact], **hyper).step()
    lost = exact.detach() - param.detach().float()
    assert torch.all((lost - buffer.float()).abs() <= lost.abs() * 2.0**-8)
    assert torch.count_nonzero(buffer) > 8


def test_only_bfloat16_parameters_get_a_buffer_and_float32_ones_are_unchanged():
    case = next(c for c in CASES if c.optimizer == "AdamW" and c.hyper)
    mixed = [
        torch.nn.Parameter(torch.from_numpy(p).to(torch.bfloat16 if i % 2 else torch.float32))
        for i, p in enumerate(initial_params("float32"))
    ]
    only_float32 = [torch.nn.Parameter(torch.from_numpy(p)) for p in initial_params("float32")]
    _, kahan = _train(case, params=mixed, kahan_summation=True)
    _, plain = _train(case, params=only_float32, kahan_summation=False)
    for i, (a, b) in enumerate(zip(mixed, only_float32)):
        assert (KEY in kahan.state[a]) == (a.dtype == torch.bfloat16)
        if a.dtype == torch.float32:
            assert_bitwise_equal(a, b, f"params[{i}]")


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("value", ["yes", 1, 0, np.bool_(True), "False"])
def test_an_invalid_kahan_summation_is_refused(name, value):
    with pytest.raises(ValueError, match=rf"Invalid kahan_summation: {value!r} \(must be None, True or False\)"):
        getattr(adamkit.torch, name)([torch.nn.Parameter(torch.ones(3))], kahan_summation=value)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "Adagrad"])
def test_kahan_summation_true_with_fused_false_is_refused(name):
    with pytest.raises(ValueError, match=r"kahan_summation=True needs the fused kernels.*fused=False"):
        getattr(adamkit.torch, name)([torch.nn.Parameter(torch.ones(3))], kahan_summation=True, fused=False)
    # Without bfloat16 parameters, False and the default are fine with the reference backend.
    for kahan_summation in (None, False):
        param = torch.nn.Parameter(torch.ones(3))
        param.grad = torch.ones(3)
        getattr(adamkit.torch, name)([param], kahan_summation=kahan_summation, fused=False).step()
        assert param.dtype == torch.float32 and not torch.equal(param, torch.ones(3))


def _resumed(case, state_dict, kahan_summation=None, resume_at=STEPS // 2):
    """Fresh parameters holding the values at ``resume_at``, a fresh optimizer loading
    ``state_dict``, then the remaining steps."""
    values, _ = _train(case, steps=resume_at)
    params = [torch.nn.Parameter(v.detach().clone()) for v in values]
    optimizer = getattr(adamkit.torch, case.optimizer)(
        param_groups(case, params), **case.hyper, kahan_summation=kahan_summation
    )
    optimizer.load_state_dict(copy.deepcopy(state_dict))
    # Loading casts NAdam's mu_product to the parameters' dtype, bfloat16 here, as torch does;
    # these tests are of the compensation, so the product keeps the dtype it was saved in.
    ordered = [param for group in optimizer.param_groups for param in group["params"]]
    for index, saved in state_dict["state"].items():
        for slot in optimizer.spec.scalar_state:
            optimizer.state[ordered[index]][slot.key] = saved[slot.key].clone()
    return _train(case, params=params, optimizer=optimizer, first_step=resume_at)


@pytest.mark.parametrize("case", CASES[::2], ids=lambda c: c.id)
def test_a_checkpoint_keeps_the_compensation_and_resumes_bit_for_bit(case):
    _, halfway = _train(case, steps=STEPS // 2)
    state_dict = halfway.state_dict()
    assert all(KEY in state for state in state_dict["state"].values())
    params, optimizer = _resumed(case, state_dict)
    _assert_matches_reference(params, optimizer, _reference(case))


@pytest.mark.parametrize("case", CASES[1::2], ids=lambda c: c.id)
def test_a_checkpoint_without_compensation_resumes_from_zero_compensation(case):
    _, halfway = _train(case, steps=STEPS // 2)
    exported = halfway.export_torch_state_dict()
    assert not any(KEY in state for state in exported["state"].values())
    params, optimizer = _resumed(case, exported)
    # The same as zeroing the buffers in the uninterrupted run at that step.
    expected_params, expected = _train(case, steps=STEPS // 2)
    for state in expected.state.values():
        state[KEY].zero_()
    _train(case, params=expected_params, optimizer=expected, first_step=STEPS // 2)
    for i, (a, b) in enumerate(zip(params, expected_params)):
        assert_bitwise_equal(a, b, f"params[{i}]")
        assert_bitwise_equal(optimizer.state[a][KEY], expected.state[b][KEY], f"compensation[{i}]")


def test_a_deleted_buffer_is_recreated_zero_on_the_next_step():
    case = next(c for c in CASES if c.optimizer == "Adam" and c.hyper)
    params, optimizer = _train(case, steps=STEPS // 2)
    zeroed_params, zeroed = _train(case, steps=STEPS // 2)
    del optimizer.state[params[3]][KEY]  # the cached kernel call must notice
    zeroed.state[zeroed_params[3]][KEY].zero_()
    _train(case, params=params, optimizer=optimizer, first_step=STEPS // 2)
    _train(case, params=zeroed_params, optimizer=zeroed, first_step=STEPS // 2)
    for i, (a, b) in enumerate(zip(params, zeroed_params)):
        assert_bitwise_equal(a, b, f"params[{i}]")
        assert_bitwise_equal(optimizer.state[a][KEY], zeroed.state[b][KEY], f"compensation[{i}]")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_export_loads_into_torch_optim(name):
    param = torch.nn.Parameter(torch.linspace(-1, 1, 17, dtype=torch.bfloat16))
    ours = getattr(adamkit.torch, name)([param], **RICH[name])
    for _ in range(3):
        param.grad = torch.full_like(param, 0.25)
        ours.step()
    assert KEY in ours.state_dict()["state"][0]
    exported = ours.export_torch_state_dict()
    theirs = getattr(torch.optim, name)([param], **RICH[name])
    theirs.load_state_dict(exported)
    assert KEY not in theirs.state[param]
    assert set(theirs.state[param]) == set(ours.state[param]) - {KEY}
    theirs.step()


def test_loading_compensation_into_kahan_summation_false_drops_it():
    case = next(c for c in CASES if c.optimizer == "RMSprop" and c.hyper)
    _, halfway = _train(case, steps=STEPS // 2)
    params, optimizer = _resumed(case, halfway.state_dict(), kahan_summation=False)
    assert not any(KEY in optimizer.state[p] for p in params)
    assert not any(KEY in state for state in optimizer.state_dict()["state"].values())


def test_a_bad_checkpoint_buffer_is_refused_and_changes_nothing():
    case = next(c for c in CASES if c.optimizer == "Adam" and c.hyper)
    params, optimizer = _train(case, steps=2)
    state_dict = copy.deepcopy(optimizer.state_dict())
    state_dict["state"][1][KEY] = torch.zeros(3, dtype=torch.bfloat16)
    before = snapshot(optimizer)
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\[1\]\['kahan_compensation'\] has shape \(3,\)"):
        optimizer.load_state_dict(state_dict)
    assert_unchanged(optimizer, before)


def _least_squares_fit(dtype, kahan_summation, steps=400, lr=1e-4):
    """AdamW on the loss 0.5 * mean((X W^T - Y)^2) from fixed bfloat16-exact weights; the
    gradient (W X^T X - Y^T X) / Y.numel() is computed in float32 from the current weights and
    given to the optimizer in ``dtype``. Returns the final weights and the loss decrease."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(256, 32, generator=generator)
    targets = inputs @ torch.randn(16, 32, generator=generator).T
    start = torch.randn(16, 32, generator=generator).to(torch.bfloat16).float()
    gram, cross = inputs.T @ inputs, targets.T @ inputs

    def loss(weights):
        return 0.5 * ((inputs @ weights.T - targets) ** 2).mean().item()

    weights = torch.nn.Parameter(start.clone().to(dtype))
    optimizer = adamkit.torch.AdamW([weights], lr=lr, kahan_summation=kahan_summation)
    for _ in range(steps):
        weights.grad = ((weights.detach().float() @ gram - cross) / targets.numel()).to(dtype)
        optimizer.step()
    final = weights.detach().float()
    return final, loss(start) - loss(final)


def test_kahan_tracks_float32_where_plain_bfloat16_stalls():
    # With lr = 1e-4 every AdamW update is below half a bfloat16 ulp of these weights (|w| ~ 1,
    # half an ulp >= 2**-9): rounded plainly, the weights barely move.
    reference, reference_progress = _least_squares_fit(torch.float32, None)
    compensated, compensated_progress = _least_squares_fit(torch.bfloat16, None)
    plain, plain_progress = _least_squares_fit(torch.bfloat16, False)
    # Progress is the decrease of the loss from the start; float32's is about 1.6.
    assert reference_progress > 1.0
    assert abs(compensated_progress / reference_progress - 1) < 0.05  # measured: +0.3 %
    assert plain_progress / reference_progress < 0.1  # measured: 1.3 %
    compensated_distance = (compensated - reference).abs().mean()
    plain_distance = (plain - reference).abs().mean()
    assert compensated_distance < 0.1 * plain_distance  # measured: 0.0016 against 0.039


@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_bfloat16_off_the_cpu_is_compensated_only_with_true(name):
    """By default torch's operations step bfloat16 parameters on other devices (the meta device
    stands in for a GPU) plainly, without a buffer; ``kahan_summation=True`` gives them one,
    which the multi-tensor device path uses (its values: tests/torch/test_multi_tensor.py)."""
    hyper = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.1}
    for kahan_summation, buffered in ((None, False), (False, False), (True, True)):
        param = torch.nn.Parameter(torch.ones(5, dtype=torch.bfloat16, device="meta"))
        param.grad = torch.ones_like(param)
        optimizer = getattr(adamkit.torch, name)([param], kahan_summation=kahan_summation, **hyper)
        optimizer.step()
        assert (KEY in optimizer.state[param]) is buffered, kahan_summation
        if buffered:
            assert optimizer.state[param][KEY].device.type == "meta"
