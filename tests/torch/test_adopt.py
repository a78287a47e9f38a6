"""adamkit.torch.ADOPT's own contract: the authors' signature under adamkit's names, no torch
implementation flags (torch.optim has no ADOPT to hand them to), and the first step, which only
initialises the second moment."""

import inspect

import pytest
import torch

import adamkit.torch
from tests.torch._compare import assert_bitwise_equal

KEYWORD_ONLY = {
    "decoupled_weight_decay": False,
    "maximize": False,
    "sparse_mode": "lazy",
    "nonfinite_grads": "propagate",
    "state_dtype": None,
    "kahan_summation": None,
    "step_in_backward": False,
    "max_grad_norm": None,
}


def test_signature_is_the_authors_with_adamkits_options():
    parameters = inspect.signature(adamkit.torch.ADOPT).parameters
    positional = [(name, p.default) for name, p in parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [
        ("params", inspect.Parameter.empty),
        ("lr", 1e-3),
        ("betas", (0.9, 0.9999)),
        ("eps", 1e-6),
        ("weight_decay", 0.0),
    ]
    keyword_only = {name: p.default for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert keyword_only == KEYWORD_ONLY


@pytest.mark.parametrize("flag", ["foreach", "fused", "capturable", "differentiable"])
def test_torch_implementation_flags_are_not_accepted(flag):
    with pytest.raises(TypeError, match=flag):
        adamkit.torch.ADOPT([torch.nn.Parameter(torch.ones(3))], **{flag: False})


@pytest.mark.parametrize("decoupled", [False, True])
def test_the_first_step_only_sets_the_second_moment(decoupled):
    param = torch.nn.Parameter(torch.tensor([0.5, -2.0, 0.0, 3.0]))
    grad = torch.tensor([1.0, 0.25, -3.0, 0.0])
    optimizer = adamkit.torch.ADOPT([param], lr=0.1, weight_decay=0.2, decoupled_weight_decay=decoupled, maximize=True)
    before = param.detach().clone()
    param.grad = grad.clone()
    optimizer.step()
    state = optimizer.state[param]
    assert_bitwise_equal(param.detach(), before, "param")
    assert_bitwise_equal(state["exp_avg"], torch.zeros(4), "exp_avg")
    direction = -grad if decoupled else -grad + 0.2 * before
    assert_bitwise_equal(state["exp_avg_sq"], direction * direction, "exp_avg_sq")
    assert state["step"].item() == 1.0
    # The second step is the first update, clipped at 1^(1/4) = 1: |m| = (1 - β1)·1 at most.
    param.grad = grad.clone() * 1e3
    optimizer.step()
    assert not torch.equal(param.detach(), before)
    assert state["exp_avg"].abs().max().item() <= 0.1 + 1e-7
