"""adamkit.torch Adam/AdamW with state_dtype="int8": layout, checkpoints, the step, quality."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import adamkit.torch as akt  # noqa: E402
from adamkit import rules  # noqa: E402
from adamkit.kernels import quantized  # noqa: E402
from adamkit.quant import decode_signed, decode_unsigned, encode_signed, encode_unsigned  # noqa: E402
from adamkit.compact_state import MIN_QUANTIZED_NUMEL  # noqa: E402

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
        assert state["exp_avg"].dtype == torch.int8 and state["exp_avg"].shape == p.shape
        assert state["exp_avg_sq"].dtype == torch.uint8 and state["max_exp_avg_sq"].dtype == torch.uint8
        assert state["exp_avg_absmax"].shape == (-(-p.numel() // 256),)
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
        np.testing.assert_array_equal(state[key].numpy(), codes)
        np.testing.assert_array_equal(state[key + "_absmax"].numpy(), absmax)
    assert float(state["step"]) == 3.0


def trained(state_dtype, steps=150, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.Tanh(), torch.nn.Linear(128, 4))
    x = torch.randn(2048, 32)
    y = torch.sin(x[:, :4] * 2) + 0.1 * x[:, 4:8] + 0.3 * torch.randn(2048, 4)  # noise: a loss floor
    opt = akt.AdamW(model.parameters(), lr=3e-3, state_dtype=state_dtype)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return loss.item(), model, opt


def test_int8_training_tracks_float32_training():
    start = trained(None, steps=1)[0]
    fp32, _, _ = trained(None)
    int8, model, opt = trained("int8")
    assert opt.state[model[0].weight]["exp_avg"].dtype == torch.int8
    assert fp32 < 0.5 * start  # the task is learned...
    assert abs(int8 - fp32) <= 0.05 * fp32  # ...and int8 state learns it as well


def test_state_dict_is_compact_and_round_trips_bitwise():
    _, model, opt = trained("int8", steps=20)
    saved = opt.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    exported = io.BytesIO()
    torch.save(opt.export_torch_state_dict(), exported)
    assert buffer.tell() < 0.5 * exported.tell()
    first = saved["state"][0]  # the 32x128 weight: codes and scales only
    assert sum(v.numel() * v.element_size() for k, v in first.items() if k != "step") <= 2.1 * 32 * 128
    buffer.seek(0)
    other = akt.AdamW(model.parameters(), lr=3e-3, state_dtype="int8")
    other.load_state_dict(torch.load(buffer))
    for p in model.parameters():
        assert opt.state[p].keys() == other.state[p].keys()
        for key, value in opt.state[p].items():
            assert torch.equal(other.state[p][key], value) and other.state[p][key].dtype == value.dtype


def test_export_loads_into_torch_and_a_torch_checkpoint_loads_quantised():
    _, model, opt = trained("int8", steps=20)
    weight = model[0].weight
    exported = opt.export_torch_state_dict()
    reference = torch.optim.AdamW(model.parameters(), lr=3e-3)
    reference.load_state_dict(exported)
    state = reference.state[weight]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and state["exp_avg"].dtype == torch.float32
    np.testing.assert_array_equal(
        state["exp_avg"].numpy(), decode_signed(opt.state[weight]["exp_avg"].numpy(), opt.state[weight]["exp_avg_absmax"].numpy())
    )
    # torch's own fp32 checkpoint into an int8 optimizer: quantised, codes as the codec gives.
    fresh = akt.AdamW(model.parameters(), lr=3e-3, state_dtype="int8")
    fresh.load_state_dict(reference.state_dict())
    codes, absmax = encode_unsigned(reference.state[weight]["exp_avg_sq"].numpy())
    np.testing.assert_array_equal(fresh.state[weight]["exp_avg_sq"].numpy(), codes)
    np.testing.assert_array_equal(fresh.state[weight]["exp_avg_sq_absmax"].numpy(), absmax)
    # and an int8 checkpoint into a float32 adamkit optimizer is decoded.
    plain = akt.AdamW(model.parameters(), lr=3e-3)
    plain.load_state_dict(opt.state_dict())
    assert plain.state[weight]["exp_avg"].dtype == torch.float32 and "exp_avg_absmax" not in plain.state[weight]


def test_bad_state_dtype_raises_and_fused_false_is_refused():
    (p,) = params_of_sizes(10)
    with pytest.raises(ValueError, match="Invalid state_dtype: 'fp8'"):
        akt.Adam([p], state_dtype="fp8")
    with pytest.raises(ValueError, match="state_dtype='int8' needs the fused kernels"):
        akt.Adam([p], state_dtype="int8", fused=False)
    with pytest.raises(TypeError):
        akt.Adam([p], 1e-3, (0.9, 0.999), 1e-8, 0, False, "int8")  # keyword-only


def test_a_non_contiguous_parameter_steps_as_its_contiguous_copy():
    (base,) = params_of_sizes((80, 64))
    transposed = torch.nn.Parameter(base.detach().t())  # 64x80, not contiguous
    contiguous = torch.nn.Parameter(transposed.detach().contiguous())
    assert not transposed.is_contiguous()
    opts = [akt.Adam([p], **HYPER, state_dtype="int8") for p in (transposed, contiguous)]
    for step in range(3):
        grad = torch.randn(64, 80, generator=torch.Generator().manual_seed(step))
        for p, opt in zip((transposed, contiguous), opts):
            p.grad = grad.clone()
            opt.step()
    assert torch.equal(transposed, contiguous)
    assert torch.equal(opts[0].state[transposed]["exp_avg"], opts[1].state[contiguous]["exp_avg"])
