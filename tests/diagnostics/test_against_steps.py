"""diagnose() on the shared case table: it reproduces the steps the optimizers took, reads the
torch and NumPy front ends alike, and changes nothing."""

import numpy as np
import pytest

import adamkit.numpy
from adamkit import rules
from adamkit.diagnostics import diagnose
from adamkit.diagnostics.formulas import FORMULAS, bias_corrections
from adamkit.diagnostics.reading import read_groups
from tests.cases import CASES, gradients, group_order, initial_params, param_groups

STEPS = 5


def run_numpy(case, steps=STEPS):
    """The case's NumPy optimizer after ``steps`` float64 steps, its parameters before the last
    step and the last gradients, both in the order of the parameters across groups."""
    params = initial_params("float64")
    opt = getattr(adamkit.numpy, case.optimizer)(param_groups(case, params), **case.hyper)
    ordered = [p for group in opt.param_groups for p in group["params"]]
    for per_size in gradients("float64", steps):
        before = [p.copy() for p in ordered]
        grads = group_order(per_size)
        opt.step(grads)
    return opt, before, grads


def recoverable(rule, group):
    """Whether the rule's last update is determined by its state (see adamkit.diagnostics.formulas)."""
    if rule in (rules.adam, rules.adamax, rules.radam, rules.adabelief, rules.adopt, rules.ademamix):
        return True
    if rule is rules.rmsprop:
        return group["momentum"] > 0
    if rule is rules.sgd:
        return group["momentum"] != 0 and not group["nesterov"]
    return False


def last_updates(opt, before):
    """What each group's last step subtracted from its parameters, leaving out AdamW's decay."""
    updates, position = [], 0
    for group in opt.param_groups:
        shrink = 1 - group["lr"] * group["weight_decay"] if group.get("decoupled_weight_decay") else 1
        group_updates = []
        for param in group["params"]:
            group_updates.append(before[position] * shrink - param)
            position += 1
        updates.append(group_updates)
    return updates


def norm(arrays):
    return np.sqrt(sum(np.vdot(a, a) for a in arrays))


RECTIFIED = [pytest.param(case, 8, id=f"{case.id}-8-steps") for case in CASES if case.optimizer == "RAdam"]


# RAdam rectifies from step 6 on: its cases also run 8 steps.
@pytest.mark.parametrize(("case", "steps"), [pytest.param(case, STEPS, id=case.id) for case in CASES] + RECTIFIED)
def test_update_to_weight_is_the_last_step_taken(case, steps):
    opt, before, _ = run_numpy(case, steps)
    for group, updates, report in zip(opt.param_groups, last_updates(opt, before), diagnose(opt)):
        if recoverable(opt.spec.rule, group):
            expected = norm(updates) / norm(group["params"])
            assert report.update_to_weight == pytest.approx(expected, rel=1e-9), case.id
        else:
            assert report.update_to_weight is None, case.id


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.optimizer in ("Adagrad", "RMSprop", "SGD")],
    ids=lambda case: case.id,
)
def test_step_size_times_the_gradient_is_the_last_step_without_momentum(case):
    """Adagrad, and RMSprop and SGD without momentum, step by step_size × (±g + λθ)."""
    opt, before, grads = run_numpy(case)
    position = 0
    for (group, members), updates in zip(read_groups(opt), last_updates(opt, before)):
        hyper = opt.spec.rule_arguments(group)
        for member, update in zip(members, updates):
            grad = -grads[position] if hyper["maximize"] else grads[position]
            grad = grad + hyper["weight_decay"] * before[position]
            position += 1
            if group.get("momentum", 0) != 0:
                continue
            if member.stepped:
                quantities = FORMULAS[opt.spec.rule](member.state, step=member.step,
                                                     param=member.param, **hyper)
                np.testing.assert_allclose(quantities.step_size * grad, update, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize(
    "case", [case for case in CASES if case.optimizer in ("Adam", "AdamW")], ids=lambda case: case.id
)
def test_adam_step_size_times_m_hat_is_the_last_step(case):
    opt, before, _ = run_numpy(case)
    for (group, members), updates in zip(read_groups(opt), last_updates(opt, before)):
        hyper = opt.spec.rule_arguments(group)
        for member, update in zip(members, updates):
            bias_correction1, _ = bias_corrections(member.step, hyper["betas"])
            quantities = FORMULAS[rules.adam](member.state, step=member.step, param=member.param, **hyper)
            m_hat = member.state["exp_avg"] / bias_correction1
            np.testing.assert_allclose(quantities.step_size * m_hat, update, rtol=1e-9, atol=1e-300)
            np.testing.assert_allclose(quantities.update, update, rtol=1e-9, atol=1e-300)


def test_groups_are_reported_separately_and_scale_with_their_lr():
    first, second = np.ones(17), np.ones(7)
    opt = adamkit.numpy.Adam([{"params": [first]}, {"params": [second], "lr": 0.1}], lr=0.01)
    grad = np.linspace(0.5, 2.0, 24)
    opt.step([grad[:17], grad[17:]])
    one, two = diagnose(opt)
    assert (one.elements, two.elements) == (17, 7)
    # After one step v̂ = g², so the step size is lr / (|g| + ε) in each group.
    assert one.step_size.maximum == pytest.approx(0.01 / (0.5 + 1e-8))
    assert two.step_size.minimum == pytest.approx(0.1 / (2.0 + 1e-8))


def test_an_optimizer_that_has_not_stepped_reports_nothing_per_element():
    for opt in (adamkit.numpy.Adam([np.ones(7)]), adamkit.numpy.Adagrad([np.ones(7)], lr=0.1)):
        [group] = diagnose(opt)
        assert group.elements == 0 and group.step is None
        assert group.step_size is None and group.update_to_weight is None
        assert group.eps_dominated is None and group.bias_correction1 is None
        assert group.nonfinite == 0.0


def test_a_parameter_without_a_gradient_is_left_out_until_it_is_stepped():
    stepped, idle = np.ones(7), np.full(17, np.nan)
    opt = adamkit.numpy.Adam([stepped, idle], lr=0.01)
    opt.step([np.ones(7), None])
    [group] = diagnose(opt)
    assert group.elements == 7
    assert group.step_size.minimum == group.step_size.maximum
    # The idle parameter's NaNs still count as non-finite values of the group.
    assert group.nonfinite == pytest.approx(17 / (7 * 3 + 17))


def test_the_largest_step_count_gives_the_bias_corrections():
    a, b = np.ones(1), np.ones(1)
    opt = adamkit.numpy.Adam([a, b], betas=(0.5, 0.75))
    opt.step([np.ones(1), np.ones(1)])
    opt.step([np.ones(1), None])
    opt.step([np.ones(1), None])
    [group] = diagnose(opt)
    assert group.step == 3
    assert group.bias_correction1 == pytest.approx(1 - 0.5**3)
    assert group.bias_correction2 == pytest.approx(1 - 0.75**3)


def test_as_dict_is_plain_json():
    import json

    opt, _, _ = run_numpy(CASES[1])
    data = json.loads(json.dumps([group.as_dict() for group in diagnose(opt)]))
    assert set(data[0]["step_size"]) == {"minimum", "p1", "p25", "median", "p75", "p99", "maximum"}
    assert data[0]["rule"] == "Adam" and data[1]["elements"] == 7 + 4097
