"""``state_dtype="fp32"``: bfloat16 parameters with float32 optimizer state, which torch's
fused path cannot do. The step is the float32 rule on the float32 state, the parameter rounded
to bfloat16 once; the state survives a checkpoint round trip without being rounded."""

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit import rules
from adamkit.kernels import native
from tests.torch.test_backends import bf16_round

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")

SIZES = (1, 7, 17, 4097)
HYPER = dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, maximize=True)


def _start():
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(n, generator=generator).to(torch.bfloat16) for n in SIZES]


def _grads(step):
    generator = torch.Generator().manual_seed(10 + step)
    return [torch.randn(n, generator=generator).to(torch.bfloat16) for n in SIZES]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_bfloat16_parameters_keep_float32_state_and_round_once_per_step(name):
    params = [torch.nn.Parameter(p.clone()) for p in _start()]
    optimizer = getattr(adamkit.torch, name)(params, state_dtype="fp32", kahan_summation=False, **HYPER)
    expected = [p.float().numpy() for p in _start()]
    state = [{"exp_avg": np.zeros(n, np.float32), "exp_avg_sq": np.zeros(n, np.float32),
              "max_exp_avg_sq": np.zeros(n, np.float32)} for n in SIZES]  # fmt: skip
    for step in range(1, 6):
        for param, grad in zip(params, _grads(step)):
            param.grad = grad
        optimizer.step()
        for index, grad in enumerate(_grads(step)):
            new = rules.adam(expected[index], grad.float().numpy(), *state[index].values(), step=step,
                             decoupled_weight_decay=name == "AdamW", **HYPER)  # fmt: skip
            expected[index] = bf16_round(new.param)
            state[index] = {"exp_avg": new.exp_avg, "exp_avg_sq": new.exp_avg_sq, "max_exp_avg_sq": new.max_exp_avg_sq}
    for param, want, want_state in zip(params, expected, state):
        assert param.dtype == torch.bfloat16
        np.testing.assert_array_equal(param.detach().float().numpy(), want)
        for key, value in want_state.items():
            got = optimizer.state[param][key]
            assert got.dtype == torch.float32
            np.testing.assert_array_equal(got.numpy(), value, err_msg=key)


def test_float32_state_survives_a_checkpoint_round_trip_unrounded():
    params = [torch.nn.Parameter(p.clone()) for p in _start()]
    optimizer = adamkit.torch.Adam(params, state_dtype="fp32", **HYPER)
    for step in range(3):
        for param, grad in zip(params, _grads(step)):
            param.grad = grad
        optimizer.step()
    saved = optimizer.state_dict()
    assert any(
        not torch.equal(v, v.to(torch.bfloat16).float())
        for s in saved["state"].values() for k, v in s.items() if v.dtype == torch.float32 and k != "step"
    ), "the state holds nothing that bfloat16 would round"  # fmt: skip
    fresh = adamkit.torch.Adam([torch.nn.Parameter(p.detach().clone()) for p in params], state_dtype="fp32", **HYPER)
    fresh.load_state_dict(saved)
    for index, state in saved["state"].items():
        loaded = fresh.state_dict()["state"][index]
        assert loaded.keys() == state.keys()
        for key, value in state.items():
            assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key


RULES = {
    "Adamax": (rules.adamax, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    "Adadelta": (rules.adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.1)),
    "SGD": (rules.sgd, dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.1)),
    "Adagrad": (rules.adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    "RMSprop": (rules.rmsprop, dict(lr=1e-2, centered=True, momentum=0.9, weight_decay=0.1)),
}


@pytest.mark.parametrize("name", RULES)
def test_every_rule_keeps_float32_state_for_bfloat16_parameters(name):
    """The same run with float32 parameters rounded to bfloat16 after each step, by hand,
    gives the same parameters and the same float32 state, bit for bit."""
    _, hyper = RULES[name]
    params = [torch.nn.Parameter(p.clone()) for p in _start()]
    optimizer = getattr(adamkit.torch, name)(params, state_dtype="fp32", kahan_summation=False, **hyper)
    expected = [torch.nn.Parameter(p.float()) for p in _start()]
    reference = getattr(adamkit.torch, name)(expected, **hyper)
    for step in range(1, 6):
        for param, twin, grad in zip(params, expected, _grads(step)):
            param.grad = grad
            twin.grad = grad.float()
        optimizer.step()
        reference.step()
        with torch.no_grad():
            for twin in expected:
                twin.copy_(twin.to(torch.bfloat16).float())
    for param, twin in zip(params, expected):
        assert param.dtype == torch.bfloat16
        assert torch.equal(param.float(), twin)
        state, want = optimizer.state[param], reference.state[twin]
        assert state.keys() == want.keys()
        for key, value in want.items():
            assert state[key].dtype == value.dtype == (torch.float32 if key != "step" else value.dtype), key
            assert torch.equal(state[key], value), key


def test_compact_state_is_only_for_adam():
    with pytest.raises(ValueError, match="Invalid state_dtype: 'int8'.*RMSprop takes None or 'fp32'"):
        adamkit.torch.RMSprop([torch.nn.Parameter(torch.ones(3))], state_dtype="int8")


def test_float32_state_is_refused_without_the_kernels():
    with pytest.raises(ValueError, match="state_dtype='fp32' needs the fused kernels"):
        adamkit.torch.Adam([torch.nn.Parameter(torch.ones(3, dtype=torch.bfloat16))], state_dtype="fp32", fused=False)
