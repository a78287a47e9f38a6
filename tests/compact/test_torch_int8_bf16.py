"""adamkit.torch with state_dtype="int8" on bfloat16 parameters: 8-bit state plus the Kahan
buffer, the step bit for bit as the NumPy model (tests/compact/test_kernel_bf16.py), checkpoints
and the conversion of bfloat16-state checkpoints."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import adamkit.torch as akt  # noqa: E402
from adamkit.compact import bfloat16  # noqa: E402
from adamkit.compact.int8 import encode_signed, encode_unsigned  # noqa: E402
from adamkit.compact.policy import MIN_QUANTIZED_NUMEL  # noqa: E402
from adamkit.kernels import quantized  # noqa: E402
from adamkit.kernels.quantized import codes_key, compact_keys, scales_key  # noqa: E402
from tests.compact.test_kernel import assert_same_state  # noqa: E402
from tests.compact.test_kernel_bf16 import reference_bf16_step  # noqa: E402
from tests.kernels.trajectories import tensor_count  # noqa: E402

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")
KEY = "kahan_compensation"
# Two groups of non-default hyperparameters; sizes 4096, 4097 and 8191 get 8-bit state, 7 not.
GROUPS = {
    "AdamW": (
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
        dict(lr=3e-3, weight_decay=0.02, maximize=True),
    ),
    "Lion": (
        dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1),
        dict(lr=3e-3, decoupled_weight_decay=False, weight_decay=0.05, maximize=True),
    ),
    "RAdam": (
        dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        dict(lr=1e-2, maximize=True, decoupled_weight_decay=True, weight_decay=0.05),
    ),
}
SIZES = ((64, 64), 4097, 8191, 7)


def bf16_params(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(size, generator=generator).to(torch.bfloat16).requires_grad_() for size in SIZES]


def set_grads(params, seed):
    generator = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator).to(torch.bfloat16)


def as_bits(tensor):
    return tensor.detach().reshape(-1).view(torch.int16).numpy().view(np.uint16).copy()


def zero_state(spec, group, numel):
    state = {}
    for key in quantized.state_keys(spec, group):
        state[codes_key(key)] = np.zeros(numel, quantized.CODE_DTYPES[key])
        state[scales_key(key)] = np.zeros(-(-numel // 256), np.float32)
    return state


@pytest.mark.parametrize("kahan_summation", [None, False])
@pytest.mark.parametrize("optimizer", GROUPS)
def test_a_step_equals_decode_rule_encode_and_the_bf16_store(optimizer, kahan_summation):
    """Four steps (the first by the full path, the others by the cached plan), two groups."""
    spec = getattr(akt, optimizer).spec
    params = bf16_params()
    groups = [dict(params=params[:2], **GROUPS[optimizer][0]), dict(params=params[2:], **GROUPS[optimizer][1])]
    opt = getattr(akt, optimizer)(groups, state_dtype="int8", kahan_summation=kahan_summation)
    big = [i for i, p in enumerate(params) if p.numel() >= MIN_QUANTIZED_NUMEL]
    expected = {
        i: [
            as_bits(params[i]),
            np.zeros(params[i].numel(), np.uint16),
            zero_state(spec, GROUPS[optimizer][i >= 2], params[i].numel()),
        ]
        for i in big
    }
    for step in range(1, 5):
        set_grads(params, step)
        for i in big:
            group = GROUPS[optimizer][i >= 2]
            param, compensation, state = expected[i]
            param, new_compensation, state = reference_bf16_step(
                optimizer if optimizer != "AdamW" else "Adam",
                param,
                None if kahan_summation is False else compensation,
                as_bits(params[i].grad),
                state,
                tensor_count(spec, group, step),
                {**group, **({"decoupled_weight_decay": True} if optimizer == "AdamW" else {})},
            )
            expected[i] = [param, compensation if new_compensation is None else new_compensation, state]
        opt.step()
    for i, p in enumerate(params):
        state = opt.state[p]
        if i not in big:
            assert state[quantized.state_keys(spec, {})[0]].dtype == torch.bfloat16
            continue
        np.testing.assert_array_equal(as_bits(p), expected[i][0])
        assert (KEY in state) == (kahan_summation is None)
        if kahan_summation is None:
            np.testing.assert_array_equal(as_bits(state[KEY]), expected[i][1])
            assert expected[i][1].any()
        coded = {k: v.numpy().reshape(-1) for k, v in state.items() if k not in ("step", KEY)}
        assert_same_state(coded, expected[i][2])


def test_the_state_holds_two_bytes_of_compensation_and_about_two_of_codes_per_parameter():
    p = torch.zeros(1 << 16, dtype=torch.bfloat16, requires_grad=True)
    opt = akt.AdamW([p], lr=1e-3, state_dtype="int8")
    p.grad = torch.ones_like(p)
    opt.step()
    sizes = {k: v.numel() * v.element_size() / p.numel() for k, v in opt.state[p].items() if k != "step"}
    assert sizes == {
        KEY: 2,
        "exp_avg_codes": 1,
        "exp_avg_sq_codes": 1,
        "exp_avg_absmax": 1 / 64,
        "exp_avg_sq_absmax": 1 / 64,
    }


def trained(seed=0, steps=3):
    params = bf16_params(seed)
    opt = akt.AdamW(params, **GROUPS["AdamW"][0], state_dtype="int8")
    for step in range(steps):
        set_grads(params, 100 + step)
        opt.step()
    return params, opt


def test_state_dict_round_trips_and_continues_bitwise():
    params, opt = trained()
    saved = opt.state_dict()
    assert set(saved["state"][0]) == {
        "step",
        KEY,
        *(n for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") for n in compact_keys(key)),
    }
    copies = [p.detach().clone().requires_grad_() for p in params]
    other = akt.AdamW(copies, **GROUPS["AdamW"][0], state_dtype="int8")
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer))
    for optimizer, tensors in ((opt, params), (other, copies)):
        set_grads(tensors, 7)
        optimizer.step()
    for p, q in zip(params, copies):
        assert torch.equal(p, q)
        for key, value in opt.state[p].items():
            assert torch.equal(other.state[q][key], value) and other.state[q][key].dtype == value.dtype
    exported = opt.export_torch_state_dict()["state"][0]
    assert (
        set(exported) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
        and exported["exp_avg"].dtype == torch.float32
    )


def test_a_bf16_state_checkpoint_of_bf16_params_loads_as_codes():
    """Before 8-bit state took bfloat16 parameters, state_dtype="int8" kept their state in
    bfloat16 (as state_dtype=None does): such a checkpoint loads, encoded."""
    params = bf16_params()
    old = akt.AdamW(params, **GROUPS["AdamW"][0])
    set_grads(params, 1)
    old.step()
    saved = old.state_dict()
    assert saved["state"][0]["exp_avg"].dtype == torch.bfloat16
    new = akt.AdamW(params, **GROUPS["AdamW"][0], state_dtype="int8")
    new.load_state_dict(saved)
    state = new.state[params[0]]
    for key, encode in (("exp_avg", encode_signed), ("exp_avg_sq", encode_unsigned)):
        codes, absmax = encode(saved["state"][0][key].float().numpy())
        np.testing.assert_array_equal(state[codes_key(key)].numpy(), codes)
        np.testing.assert_array_equal(state[scales_key(key)].numpy(), absmax)
    assert torch.equal(state[KEY], saved["state"][0][KEY])
    assert new.state[params[3]]["exp_avg"].dtype == torch.bfloat16  # 7 elements: as before
    set_grads(params, 2)
    new.step()


def test_loading_checks_the_compensation_and_the_codes_of_bf16_params():
    params, opt = trained()
    for key, bad in (
        (KEY, torch.zeros(64, 64)),
        ("exp_avg_codes", torch.zeros(64, 64, dtype=torch.uint8)),
        ("exp_avg_absmax", torch.zeros(3)),
    ):
        saved = opt.state_dict()
        saved["state"][0] = {**saved["state"][0], key: bad}
        other = akt.AdamW(bf16_params(), **GROUPS["AdamW"][0], state_dtype="int8")
        with pytest.raises(ValueError, match=key):
            other.load_state_dict(saved)
        assert not other.state


def test_small_bf16_parameters_and_bf16_state_keep_full_precision_state():
    params = bf16_params()
    opt = akt.AdamW(params, lr=1e-3, state_dtype="bf16")
    set_grads(params, 1)
    opt.step()
    assert opt.state[params[0]]["exp_avg"].dtype == torch.bfloat16
    assert bfloat16.to_float32(as_bits(params[0])).dtype == np.float32
