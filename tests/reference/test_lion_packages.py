"""adamkit's Lion rule and the paper's transcription against the torch packages that implement
Lion, in float64 over 60 steps on two groups (:mod:`tests.reference._lion_parity`, which also
says how each package scales its weight decay)."""

import pytest

from tests.cases import GROUP_OF_SIZE
from tests.reference._lion_parity import GROUPS, check_against_rule_and_reference, problem

torch = pytest.importorskip("torch")


def run_package(make_optimizer, params, grads):
    """Step the package's optimizer over ``grads`` on two groups; return params and exp_avgs."""
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    groups = [
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == group], **GROUPS[group]} for group in (0, 1)
    ]
    optimizer = make_optimizer(groups)
    for step_grads in grads:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    finals = [t.detach().numpy() for t in tensors]
    return finals, [optimizer.state[t]["exp_avg"].numpy() for t in tensors]


def test_lion_pytorch():
    lion_pytorch = pytest.importorskip("lion_pytorch")
    params, grads = problem()
    finals, exp_avgs = run_package(lion_pytorch.Lion, params, grads)
    check_against_rule_and_reference(finals, exp_avgs, params, grads)


def test_lion_pytorch_fully_decoupled_decay_is_lambda_over_initial_lr():
    """lion_pytorch's ``decoupled_weight_decay=True`` decays by γλ/γ₀ (γ₀ its constructor lr,
    here the first group's): adamkit's decoupled decay with λ/γ₀."""
    lion_pytorch = pytest.importorskip("lion_pytorch")
    params, grads = problem()
    initial_lr = GROUPS[0]["lr"]
    finals, exp_avgs = run_package(
        lambda groups: lion_pytorch.Lion(groups, lr=initial_lr, decoupled_weight_decay=True), params, grads
    )
    scaled = [{**group, "weight_decay": group["weight_decay"] / initial_lr} for group in GROUPS]
    check_against_rule_and_reference(finals, exp_avgs, params, grads, groups=scaled)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "options", [{}, {"decoupled_weight_decay": False, "maximize": True}], ids=["decoupled", "l2-maximize"]
)
def test_pytorch_optimizer(options, foreach):
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    params, grads = problem()

    def make(groups):
        return pytorch_optimizer.Lion(
            groups,
            weight_decouple=options.get("decoupled_weight_decay", True),
            maximize=options.get("maximize", False),
            foreach=foreach,
        )

    finals, exp_avgs = run_package(make, params, grads)
    check_against_rule_and_reference(finals, exp_avgs, params, grads, **options)
