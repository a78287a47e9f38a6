"""adamkit.torch's compact rules (adamkit.specs.COMPACT) with state_dtype="int8": layout, checkpoints, the
step, quality."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import adamkit.torch as akt  # noqa: E402
from adamkit import rules, specs  # noqa: E402
from adamkit.compact.int8 import decode_signed, decode_unsigned, encode_signed, encode_unsigned  # noqa: E402
from adamkit.compact.policy import MIN_QUANTIZED_NUMEL  # noqa: E402
from adamkit.kernels import quantized  # noqa: E402
from adamkit.kernels.quantized import codes_key, compact_keys, scales_key  # noqa: E402
from adamkit.specs import SCALAR_STATE_KEYS  # noqa: E402
from tests.compact.test_kernel import assert_same_state, copied, reference_step  # noqa: E402
from tests.kernels.trajectories import tensor_count  # noqa: E402

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")
HYPER = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)


def params_of_sizes(*sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(size, generator=generator, requires_grad=True) for size in sizes]


def set_grads(params, seed):
    generator = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator)


def test_large_float32_parameters_get_codes_and_small_ones_stay_float32():
    big, small, wide = params_of_sizes((64, 80), MIN_QUANTIZED_NUMEL - 1, (3, 4097))
    opt = akt.AdamW([big, small, wide], **HYPER, state_dtype="int8")
    set_grads([big, small, wide], 1)
    opt.step()
    for p in (big, wide):
        state = opt.state[p]
        assert state["exp_avg_codes"].dtype == torch.int8 and state["exp_avg_codes"].shape == p.shape
        assert state["exp_avg_sq_codes"].dtype == torch.uint8 and state["max_exp_avg_sq_codes"].dtype == torch.uint8
        assert state["exp_avg_absmax"].shape == (-(-p.numel() // 256),)
        assert not {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"} & state.keys()
        state_bytes = sum(v.numel() * v.element_size() for k, v in state.items() if k != "step")
        assert state_bytes / p.numel() <= 3.1  # three 8-bit states with amsgrad
    assert opt.state[small]["exp_avg"].dtype == torch.float32
    assert "exp_avg_absmax" not in opt.state[small]


def test_state_is_about_two_bytes_per_parameter_without_amsgrad():
    (p,) = params_of_sizes(1 << 20)
    opt = akt.Adam([p], lr=1e-3, state_dtype="int8")
    set_grads([p], 0)
    opt.step()
    state_bytes = sum(v.numel() * v.element_size() for k, v in opt.state[p].items() if k != "step")
    assert state_bytes / p.numel() <= 2.1


@pytest.mark.parametrize("optimizer", ["Adam", "AdamW"])
def test_a_step_equals_decode_rule_encode(optimizer):
    (p,) = params_of_sizes(5000)
    opt = getattr(akt, optimizer)([p], **HYPER, state_dtype="int8")
    expected_param = p.detach().numpy().copy()
    expected = None
    hyper = {**HYPER, "decoupled_weight_decay": optimizer == "AdamW"}
    for step in (1, 2, 3):
        set_grads([p], step)
        grad = p.grad.numpy().copy()
        if expected is None:
            zeros = np.zeros(p.numel(), np.float32)
            decoded = (zeros, zeros, zeros)
        else:
            decoded = (decode_signed(*expected[0]), decode_unsigned(*expected[1]), decode_unsigned(*expected[2]))
        new = rules.adam(expected_param, grad, *decoded, step=step, **hyper)
        expected_param = new.param
        expected = encode_signed(new.exp_avg), encode_unsigned(new.exp_avg_sq), encode_unsigned(new.max_exp_avg_sq)
        opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), expected_param)
    state = opt.state[p]
    for key, (codes, absmax) in zip(("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), expected):
        np.testing.assert_array_equal(state[codes_key(key)].numpy(), codes)
        np.testing.assert_array_equal(state[scales_key(key)].numpy(), absmax)
    assert float(state["step"]) == 3.0


# Each optimizer with a learning rate that learns the task below in 150 full-batch steps.
TRAINED = {"AdamW": 3e-3, "Adamax": 1e-2, "Adadelta": 3.0}
# The optimizers whose 8-bit checkpoints are tested, each with the learning rate it is run at.
CHECKPOINTED = TRAINED | {"RAdam": 1e-2}


def trained(state_dtype, steps=150, seed=0, optimizer="AdamW"):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.Tanh(), torch.nn.Linear(128, 4))
    x = torch.randn(2048, 32)
    y = torch.sin(x[:, :4] * 2) + 0.1 * x[:, 4:8] + 0.3 * torch.randn(2048, 4)  # noise: a loss floor
    opt = getattr(akt, optimizer)(model.parameters(), lr=CHECKPOINTED[optimizer], state_dtype=state_dtype)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return loss.item(), model, opt


@pytest.mark.parametrize("optimizer", TRAINED)
@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_compact_training_tracks_float32_training(state_dtype, optimizer):
    start = trained(None, steps=1, optimizer=optimizer)[0]
    fp32, _, _ = trained(None, optimizer=optimizer)
    compact, model, opt = trained(state_dtype, optimizer=optimizer)
    first = state_keys(optimizer)[0]
    state = opt.state[model[0].weight]
    if state_dtype == "int8":
        assert state[codes_key(first)].numpy().dtype == quantized.CODE_DTYPES[first] and scales_key(first) in state
    else:
        assert state[first].dtype == torch.bfloat16
    assert fp32 < 0.5 * start  # the task is learned...
    assert abs(compact - fp32) <= 0.05 * fp32  # ...and compact state learns it as well


def state_keys(optimizer):
    return [slot.key for slot in getattr(akt, optimizer).spec.slots[:2]]


OVERFLOWING = [("Adam", {}), ("AdamW", {}), ("Adam", {"amsgrad": True}), ("Adamax", {}), ("Adadelta", {}), ("AdaBelief", {"amsgrad": True})]
# RAdam takes the 1e38 gradient only: at 3.4e38 its momentum step before rectification,
# m/(1 - β1^t)·γ, computes m/(1 - β1) = 3.4e38 within 2^-8 of the largest float, which float32
# state reaches just below it and bfloat16 state, rounding m up stochastically, beyond it.
HUGE = OVERFLOWING + [("RAdam", {})]


@pytest.mark.parametrize("nonfinite_grads", ["propagate", "skip"])
@pytest.mark.parametrize("optimizer, hyper", HUGE, ids=lambda v: str(v))
@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_a_huge_finite_gradient_leaves_every_parameter_finite_as_float32_state_does(state_dtype, optimizer, hyper, nonfinite_grads):
    """Issue case 16: one gradient element of 1e38 in a parameter of 5000 elements. Its square
    overflows: with float32 state that element's exp_avg_sq (square_avg) is infinite and its
    step 0. With int8 state the block's scale became infinite and all 256 parameters of the
    block NaN, also with nonfinite_grads="skip" (the gradient is finite). Now every parameter is
    finite, as with float32 state, after that step and after four ordinary ones. (Adamax's
    exp_inf is a maximum of |g|, which does not overflow; tests/compact/test_kernel.py makes its
    exp_avg overflow.)"""
    def trajectory(state_dtype):
        (p,) = params_of_sizes(5000)
        opt = getattr(akt, optimizer)([p], **hyper, state_dtype=state_dtype, nonfinite_grads=nonfinite_grads)
        params = []
        for step in range(5):
            set_grads([p], seed=step + 1)
            if step == 0:
                p.grad[1234] = 1e38
            opt.step()
            params.append(p.detach().clone())
        return params, opt.state[p]

    full, _ = trajectory(None)
    compact, state = trajectory(state_dtype)
    if state_dtype == "int8":
        assert state[codes_key(state_keys(optimizer)[0])].dtype in (torch.int8, torch.uint8)
    for step, (expected, actual) in enumerate(zip(full, compact)):
        assert torch.isfinite(expected).all(), step  # what float32 state gives
        assert torch.isfinite(actual).all(), step


@pytest.mark.parametrize("optimizer, hyper", OVERFLOWING, ids=lambda v: str(v))
@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_gradients_near_the_largest_float_keep_every_parameter_finite_as_float32_state_does(state_dtype, optimizer, hyper):
    """64 of 4096 gradients at 3.4e38 for 60 steps: exp_avg climbs beyond the largest bfloat16
    (3.39e38), where stochastic rounding rounded it up to an infinity now and then, and the next
    step's inf - inf made the parameter NaN (from step 46 on with Adam), while float32 state
    keeps every parameter finite. Compact state does too."""
    def trajectory(state_dtype):
        (p,) = params_of_sizes(4096)
        opt = getattr(akt, optimizer)([p], **hyper, state_dtype=state_dtype)
        params = []
        for step in range(60):
            p.grad = torch.full((4096,), 1e-3)
            p.grad[:64] = 3.4e38
            opt.step()
            params.append(p.detach().clone())
        return params

    for step, (expected, actual) in enumerate(zip(trajectory(None), trajectory(state_dtype))):
        assert torch.isfinite(expected).all(), step  # what float32 state gives
        assert torch.isfinite(actual).all(), step


@pytest.mark.parametrize("optimizer", CHECKPOINTED)
def test_state_dict_is_compact_and_round_trips_bitwise(optimizer):
    _, model, opt = trained("int8", steps=20, optimizer=optimizer)
    saved = opt.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    exported = io.BytesIO()
    torch.save(opt.export_torch_state_dict(), exported)
    assert buffer.tell() < 0.5 * exported.tell()
    first = saved["state"][0]  # the 32x128 weight: codes and scales only
    assert set(first) == {"step", *(name for key in state_keys(optimizer) for name in compact_keys(key))}
    assert sum(v.numel() * v.element_size() for k, v in first.items() if k != "step") <= 2.1 * 32 * 128
    buffer.seek(0)
    other = getattr(akt, optimizer)(model.parameters(), lr=CHECKPOINTED[optimizer], state_dtype="int8")
    other.load_state_dict(torch.load(buffer))
    for p in model.parameters():
        assert opt.state[p].keys() == other.state[p].keys()
        for key, value in opt.state[p].items():
            assert torch.equal(other.state[p][key], value) and other.state[p][key].dtype == value.dtype


def decoded(state, key):
    codes, absmax = state[codes_key(key)].numpy(), state[scales_key(key)].numpy()
    return (decode_signed if codes.dtype == np.int8 else decode_unsigned)(codes, absmax)


@pytest.mark.parametrize("optimizer", CHECKPOINTED)
def test_export_loads_into_torch_and_a_torch_checkpoint_loads_quantised(optimizer):
    _, model, opt = trained("int8", steps=20, optimizer=optimizer)
    weight = model[0].weight
    first, second = state_keys(optimizer)
    exported = opt.export_torch_state_dict()
    reference = getattr(torch.optim, optimizer)(model.parameters(), lr=CHECKPOINTED[optimizer])
    reference.load_state_dict(exported)
    state = reference.state[weight]
    assert set(state) == {"step", first, second} and state[first].dtype == torch.float32
    for key in (first, second):
        np.testing.assert_array_equal(state[key].numpy(), decoded(opt.state[weight], key))
    # torch's own fp32 checkpoint into an int8 optimizer: quantised, codes as the codec gives.
    fresh = getattr(akt, optimizer)(model.parameters(), lr=CHECKPOINTED[optimizer], state_dtype="int8")
    fresh.load_state_dict(reference.state_dict())
    codes, absmax = encode_unsigned(reference.state[weight][second].numpy())
    np.testing.assert_array_equal(fresh.state[weight][codes_key(second)].numpy(), codes)
    np.testing.assert_array_equal(fresh.state[weight][scales_key(second)].numpy(), absmax)
    # and an int8 checkpoint into a float32 adamkit optimizer is decoded.
    plain = getattr(akt, optimizer)(model.parameters(), lr=CHECKPOINTED[optimizer])
    plain.load_state_dict(opt.state_dict())
    assert plain.state[weight][first].dtype == torch.float32 and scales_key(first) not in plain.state[weight]


def test_bad_state_dtype_raises_and_fused_false_is_refused():
    (p,) = params_of_sizes(10)
    with pytest.raises(ValueError, match="Invalid state_dtype: 'fp8'"):
        akt.Adam([p], state_dtype="fp8")
    with pytest.raises(ValueError, match="state_dtype='int8' needs the fused kernels"):
        akt.Adam([p], state_dtype="int8", fused=False)
    with pytest.raises(TypeError):
        akt.Adam([p], 1e-3, (0.9, 0.999), 1e-8, 0, False, "int8")  # keyword-only


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_a_non_contiguous_parameter_steps_as_its_contiguous_copy(state_dtype):
    """Its state holds the elements in the parameter's logical order: bfloat16 state made like
    the transposed parameter (transposed too) was paired with its contiguous copy's elements
    out of order."""
    (base,) = params_of_sizes((80, 64))
    transposed = torch.nn.Parameter(base.detach().t())  # 64x80, not contiguous
    contiguous = torch.nn.Parameter(transposed.detach().contiguous())
    assert not transposed.is_contiguous()
    opts = [akt.Adam([p], **HYPER, state_dtype=state_dtype) for p in (transposed, contiguous)]
    for step in range(3):
        grad = torch.randn(64, 80, generator=torch.Generator().manual_seed(step))
        for p, opt in zip((transposed, contiguous), opts):
            p.grad = grad.clone()
            opt.step()
    assert torch.equal(transposed, contiguous)
    state, other = opts[0].state[transposed], opts[1].state[contiguous]
    assert state.keys() == other.keys()
    for key in state:
        assert torch.equal(state[key], other[key]), key


# Non-default hyperparameters in two groups: maximize, weight decay, rho/eps/betas.
GROUPS = {
    "Adamax": (dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), dict(lr=1e-2, maximize=True, eps=1e-3)),
    "Adadelta": (dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1), dict(lr=2.0, rho=0.95, maximize=True)),
    "NAdam": (dict(lr=5e-3, momentum_decay=0.05, weight_decay=0.1), dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    "RAdam": (dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), dict(lr=1e-2, maximize=True, decoupled_weight_decay=True, weight_decay=0.05)),
    "AdaBelief": (
        dict(lr=5e-3, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1, rectify=True),
        dict(lr=1e-2, maximize=True, decoupled_weight_decay=False, weight_decay=0.05),
    ),
    "ADOPT": (dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1), dict(lr=1e-2, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    "Lion": (dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1), dict(lr=3e-3, decoupled_weight_decay=False, weight_decay=0.05, maximize=True)),
}


@pytest.mark.parametrize("optimizer", GROUPS)
def test_a_step_equals_the_numpy_kernel_and_decode_rule_encode(optimizer):
    spec = getattr(akt, optimizer).spec
    params = params_of_sizes((64, 80), 5000, 4097, 100, (70, 300))  # 100 is below the threshold
    groups = [dict(params=params[:3], **GROUPS[optimizer][0]), dict(params=params[3:], **GROUPS[optimizer][1])]
    opt = getattr(akt, optimizer)(groups, state_dtype="int8")
    keys = quantized.state_keys(spec, {})
    arrays = [p.detach().numpy().reshape(-1).copy() for p in params]
    kernel_states = [
        {k: np.zeros(n, dtype) for key in keys for k, n, dtype in
         ((codes_key(key), p.numel(), quantized.CODE_DTYPES[key]), (scales_key(key), -(-p.numel() // 256), np.float32))}
        for p in params
    ]  # fmt: skip
    reference, reference_states = [a.copy() for a in arrays], [copied(state) for state in kernel_states]
    quantised = [i for i, p in enumerate(params) if p.numel() >= MIN_QUANTIZED_NUMEL]
    steps = range(1, 8)  # RAdam rectifies from step 6 with these betas
    for step in steps:
        set_grads(params, step)
        for index in quantised:
            group = GROUPS[optimizer][index >= 3]
            grad = params[index].grad.numpy().reshape(-1)
            count = tensor_count(spec, group, step)
            quantized.update(spec, [arrays[index]], [grad], [kernel_states[index]], [count], **group)
            reference[index], reference_states[index] = reference_step(
                optimizer, reference[index], grad, reference_states[index], step, group
            )
        opt.step()
    for index, p in enumerate(params):
        state = opt.state[p]
        assert not spec.counts_steps or float(state["step"]) == steps[-1]
        if index not in quantised:
            assert state[keys[0]].dtype == torch.float32 and scales_key(keys[0]) not in state
            continue
        np.testing.assert_array_equal(p.detach().numpy().reshape(-1), arrays[index])
        np.testing.assert_array_equal(arrays[index], reference[index])
        assert_same_state(kernel_states[index], reference_states[index])
        assert_same_state({k: v.numpy().reshape(-1) for k, v in state.items() if k not in SCALAR_STATE_KEYS}, kernel_states[index])


@pytest.mark.parametrize("optimizer", ["Adamax", "Adadelta", "RAdam", "AdaBelief", "Lion"])
def test_bad_input_raises_and_changes_nothing(optimizer):
    params = params_of_sizes((64, 80), 5000)
    opt = getattr(akt, optimizer)(params, state_dtype="int8")
    set_grads(params, 0)
    opt.step()
    before = [p.detach().clone() for p in params], [{k: v.clone() for k, v in opt.state[p].items()} for p in params]
    set_grads(params, 1)
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\]: Invalid lr: -1.0"):
        opt.step()
    opt.param_groups[0]["lr"] = 1e-3
    broken = opt.state_dict()
    first = quantized.state_keys(opt.spec, {})[0]
    broken["state"][0] = {**broken["state"][0], scales_key(first): broken["state"][0][scales_key(first)][:3]}
    with pytest.raises(ValueError):
        opt.load_state_dict(broken)
    for p, param_before, state_before in zip(params, *before):
        assert torch.equal(p.detach(), param_before)
        for key, value in state_before.items():
            assert torch.equal(opt.state[p][key], value)
    with pytest.raises(ValueError, match=f"compact state is for {specs.listed(specs.COMPACT)}; SGD takes"):
        akt.SGD(params, lr=0.1, state_dtype="int8")
