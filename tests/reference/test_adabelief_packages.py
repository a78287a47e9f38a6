"""adamkit's AdaBelief rule against the authors' package (``adabelief_pytorch``) and
pytorch_optimizer's AdaBelief, in float64 over 60 steps, two groups, sizes 1 to 4097.

Where the packages differ from the rule, the differences are explicit:

- ``adabelief_pytorch`` has no ``maximize`` (its gradients are negated here instead), takes
  ``weight_decouple`` for the whole optimizer (not per group), and with ``amsgrad`` *and*
  ``rectify`` divides the rectified step by ``√s`` rather than ``√s_max``: adamkit, like
  pytorch_optimizer, keeps AMSGrad's maximum in the rectified step too, so that combination
  is checked against pytorch_optimizer only.
- pytorch_optimizer counts the step per group (the same here) and negates ``p.grad`` in place
  for ``maximize``.
"""

import contextlib
import io

import pytest

from tests.reference._adabelief_parity import assert_same, problem, rule_results, run_torch, torch_groups

torch = pytest.importorskip("torch")
adabelief_pytorch = pytest.importorskip("adabelief_pytorch")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

# (rule's groups, authors' optimizer-wide keywords)
AUTHORS_CASES = {
    "amsgrad-decoupled": (
        [{"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.1, "amsgrad": True},
         {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-12, "weight_decay": 0.2, "amsgrad": True}],
        {"weight_decouple": True, "rectify": False},
    ),
    "rectify-l2": (
        [{"lr": 1e-2, "betas": (0.9, 0.9), "eps": 1e-10, "weight_decay": 0.05, "rectify": True},
         {"lr": 2e-2, "betas": (0.5, 0.95), "eps": 1e-6, "weight_decay": 0.0, "rectify": True}],
        {"weight_decouple": False, "rectify": True},
    ),
}


def _authors_keywords(group):
    return {key: value for key, value in group.items() if key not in ("rectify", "decoupled_weight_decay", "maximize")}


@pytest.mark.parametrize("name, maximize", [("amsgrad-decoupled", False), ("rectify-l2", True)])
def test_rule_matches_the_authors_package(name, maximize):
    groups, options = AUTHORS_CASES[name]
    groups = [{**g, "decoupled_weight_decay": options["weight_decouple"], "maximize": maximize} for g in groups]
    params, grads = problem()
    torch_param_groups, tensors = torch_groups(torch, params, [_authors_keywords(g) for g in groups])
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the options it enables
        optimizer = adabelief_pytorch.AdaBelief(torch_param_groups, print_change_log=False, **options)
    finals = run_torch(torch, optimizer, tensors, grads, sign=-1.0 if maximize else 1.0)
    states = [{key: optimizer.state[t][key].numpy() for key in ("exp_avg", "exp_avg_var", "max_exp_avg_var") if key in optimizer.state[t]} for t in tensors]
    assert_same(rule_results(groups), finals, states)


def test_rule_matches_pytorch_optimizer_with_amsgrad_and_rectify():
    groups = [
        {"lr": 1e-2, "betas": (0.9, 0.9), "eps": 1e-10, "weight_decay": 0.1, "amsgrad": True, "rectify": True, "maximize": True},
        {"lr": 3e-3, "betas": (0.8, 0.95), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True, "rectify": True, "maximize": True},
    ]
    params, grads = problem()
    renamed = [{"lr": g["lr"], "betas": g["betas"], "eps": g["eps"], "weight_decay": g["weight_decay"], "rectify": True, "ams_bound": True} for g in groups]
    torch_param_groups, tensors = torch_groups(torch, params, renamed)
    optimizer = pytorch_optimizer.AdaBelief(torch_param_groups, maximize=True, foreach=False)
    finals = run_torch(torch, optimizer, tensors, grads)
    states = [{key: optimizer.state[t][key].numpy() for key in ("exp_avg", "exp_avg_var", "max_exp_avg_var")} for t in tensors]
    assert_same(rule_results(groups), finals, states)
