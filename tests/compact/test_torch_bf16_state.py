"""adamkit.torch with state_dtype="bf16" (Adam, AdamW, Adamax, Adadelta): stochastic rounding does
not stall exp_avg_sq."""

import pytest

torch = pytest.importorskip("torch")

import adamkit.torch as akt  # noqa: E402
from adamkit.kernels import native  # noqa: E402

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")
N, STEPS, TARGET = 4096, 1500, 1.25  # v starts at 1 and should move towards g^2 = 1.25


def second_moment_after(state_dtype):
    param = torch.nn.Parameter(torch.zeros(N))
    opt = akt.Adam([param], lr=1e-4, betas=(0.9, 0.999), state_dtype=state_dtype)
    param.grad = torch.ones(N)
    opt.step()
    state = opt.state[param]
    # Start from v = 1, m = 1 (as after a long run with |g| = 1), then |g| rises to sqrt(1.25).
    state["exp_avg_sq"].fill_(1.0)
    state["exp_avg"].fill_(1.0)
    for _ in range(STEPS):
        param.grad = torch.full((N,), TARGET**0.5)
        opt.step()
    return state["exp_avg_sq"].float(), state["exp_avg_sq"].dtype


def test_round_to_nearest_bfloat16_stalls_and_stochastic_rounding_does_not():
    fp32, dtype = second_moment_after(None)
    assert dtype == torch.float32
    expected = TARGET - (TARGET - 1) * 0.999**STEPS  # the float32 average, in closed form
    assert fp32.mean().item() == pytest.approx(expected, rel=1e-4)
    # Plain bfloat16, rounded to nearest: each increment (1 - beta2)(g^2 - v) <= 2.5e-4 is
    # below half a bfloat16 ulp at 1.0 (2^-8), so v never moves.
    v = torch.ones(N, dtype=torch.bfloat16)
    for _ in range(STEPS):
        v = (0.999 * v.float() + 0.001 * TARGET).to(torch.bfloat16)
    assert torch.all(v == 1.0)
    # adamkit's bfloat16 state tracks float32.
    bf16, dtype = second_moment_after("bf16")
    assert dtype == torch.bfloat16
    assert bf16.mean().item() == pytest.approx(expected, rel=2e-3)
    assert bf16.mean().item() > 1 + 0.9 * (expected - 1)


@pytest.mark.parametrize("optimizer", ["AdamW", "Adamax", "Adadelta", "AdaBelief"])
def test_bf16_state_is_four_bytes_per_parameter_and_exports_to_float32(optimizer):
    params = [torch.nn.Parameter(torch.randn(64, 128)), torch.nn.Parameter(torch.randn(10))]
    first, second = (slot.key for slot in getattr(akt, optimizer).spec.slots[:2])
    opt = getattr(akt, optimizer)(params, lr=1e-3, state_dtype="bf16")
    for p in params:
        p.grad = torch.randn(p.shape)
    opt.step()
    big, small = (opt.state[p] for p in params)
    assert big[first].dtype == big[second].dtype == torch.bfloat16
    assert small[first].dtype == torch.float32  # below the size threshold
    assert sum(v.numel() * v.element_size() for k, v in big.items() if k != "step") == 4 * 64 * 128
    exported = opt.export_torch_state_dict()
    # torch.optim's optimizer, or for AdaBelief, which it has not, adamkit's with float32 state.
    reference = (getattr(torch.optim, optimizer, None) or getattr(akt, optimizer))(params, lr=1e-3)
    reference.load_state_dict(exported)
    assert torch.equal(reference.state[params[0]][first], big[first].float())
    assert reference.state[params[0]][second].dtype == torch.float32
    again = getattr(akt, optimizer)(params, lr=1e-3, state_dtype="bf16")
    again.load_state_dict(reference.state_dict())
    assert again.state[params[0]][first].dtype == torch.bfloat16
    assert torch.equal(again.state[params[0]][second], big[second])
