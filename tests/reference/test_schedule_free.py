"""Schedule-Free AdamW: the rule (driven with :func:`advance_group`, switched to x and back by
:func:`to_x` and :func:`to_y`) against the float64 transcription of the paper's algorithm and
against the authors' package ``schedulefree`` (``AdamWScheduleFree``), all in float64.

60 steps, two parameter groups, sizes 1, 7, 17 and 4097, weight decay, warmup, r ≠ 0 and a
non-default ``weight_lr_power``; the optimizers switch to eval mode (x) and back to train mode
(y) twice during the run, and x, z, the second moment and the group keys are compared there
and at the end.
"""

import numpy as np
import pytest

from adamkit.rules.schedule_free import ADAMW_SCHEDULE_FREE, GROUP_STATE, advance_group, schedule_free_adamw, to_x, to_y
from tests.cases import GROUP_OF_SIZE, SIZES, gradients, initial_params
from tests.reference.schedule_free import ScheduleFreeAdamW

torch = pytest.importorskip("torch")
schedulefree = pytest.importorskip("schedulefree")

STEPS = 60
SWITCHES = (20, 45)  # the steps after which the optimizers switch to x and back
RELATIVE = 1e-12
HYPER = (
    (
        {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1, "warmup_steps": 7, "r": 1.0, "weight_lr_power": 1.5},
        {"lr": 3e-3, "eps": 1e-3, "weight_decay": 0.0, "r": 0.5},
    ),
    (
        {"lr": 3e-3, "weight_decay": 0.05, "warmup_steps": 3, "r": 2.0, "weight_lr_power": 0.0},
        {"betas": (0.5, 0.9), "warmup_steps": 0, "weight_decay": 0.2},
    ),
)
GROUP_KEYS = ("k", "lr_max", "weight_sum", "scheduled_lr")


def assert_close(actual, expected, what):
    error = np.max(np.abs(np.asarray(actual) - np.asarray(expected)))
    assert error <= RELATIVE * np.max(np.abs(expected)) + 1e-300, f"{what}: max error {error:.3g}"


def split(values):
    return [[v for v, g in zip(values, GROUP_OF_SIZE) if g == group] for group in (0, 1)]


class Rule:
    """The rule driven as the front ends drive it: group keys advanced once per group and step."""

    def __init__(self, hyper, second, params):
        overrides = (hyper, {**hyper, **second})
        self.groups = [{**ADAMW_SCHEDULE_FREE.defaults, **o, **GROUP_STATE, "train_mode": True} for o in overrides]
        self.params = split([p.copy() for p in params])
        self.z = [[None] * len(ps) for ps in self.params]
        self.v = [[np.zeros_like(p) for p in ps] for ps in self.params]

    def step(self, grads):
        for g, (group, group_grads) in enumerate(zip(self.groups, split(grads))):
            count = advance_group(group)
            for i, grad in enumerate(group_grads):
                arguments = ADAMW_SCHEDULE_FREE.rule_arguments(group)
                state = schedule_free_adamw(
                    self.params[g][i], grad, self.z[g][i], self.v[g][i], step=count, **arguments
                )
                self.params[g][i], self.z[g][i], self.v[g][i] = state

    def switch(self, point):
        for g, group in enumerate(self.groups):
            beta1 = group["betas"][0]
            self.params[g] = [point(p, z, beta1) for p, z in zip(self.params[g], self.z[g])]

    def x(self):
        self.switch(to_x)
        x = [p.copy() for ps in self.params for p in ps]
        self.switch(to_y)
        return x


class Package:
    """``schedulefree.AdamWScheduleFree`` on float64 tensors."""

    def __init__(self, hyper, second, params):
        self.tensors = [torch.tensor(p) for p in params]
        first, last = split(self.tensors)
        self.optimizer = schedulefree.AdamWScheduleFree([{"params": first}, {"params": last, **second}], **hyper)
        self.optimizer.train()
        self.order = first + last

    def step(self, grads):
        for tensor, grad in zip(self.tensors, grads):
            tensor.grad = torch.tensor(grad)  # the package divides the gradient in place
        self.optimizer.step()

    def x(self):
        self.optimizer.eval()
        x = [t.numpy().copy() for t in self.order]
        self.optimizer.train()
        return x

    def state(self, key):
        return [self.optimizer.state[t][key].numpy() for t in self.order]


class Transcription:
    def __init__(self, hyper, second, params):
        self.groups = [ScheduleFreeAdamW(ps, **o) for ps, o in zip(split(params), (hyper, {**hyper, **second}))]

    def step(self, grads):
        for group, group_grads in zip(self.groups, split(grads)):
            group.step(group_grads)

    def x(self):
        return [x for group in self.groups for x in group.x]


@pytest.mark.parametrize("hyper, second", HYPER)
def test_rule_equals_transcription_and_package(hyper, second):
    params = initial_params("float64")
    rule, package, transcription = (kind(hyper, second, params) for kind in (Rule, Package, Transcription))
    for step, grads in enumerate(gradients("float64", STEPS), start=1):
        for runner in (rule, package, transcription):
            runner.step(grads)
        if step in SWITCHES or step == STEPS:
            expected = transcription.x()
            for what, x in (("rule", rule.x()), ("schedulefree", package.x())):
                for size, actual, wanted in zip(SIZES, x, expected):
                    assert_close(actual, wanted, f"{what} x, size {size}, step {step}")
    z = [z for group in rule.z for z in group]
    v = [v for group in rule.v for v in group]
    for key, ours, wanted in (("z", z, package.state("z")), ("exp_avg_sq", v, package.state("exp_avg_sq"))):
        for actual, expected in zip(ours, wanted):
            assert_close(actual, expected, key)
    for key, ours in (("z", z), ("exp_avg_sq", v)):
        theirs = [getattr(t, "z" if key == "z" else "v")[i] for t in transcription.groups for i in range(len(t.x))]
        for actual, expected in zip(ours, theirs):
            assert_close(actual, expected, f"{key} against the transcription")
    for ours, theirs in zip(rule.groups, package.optimizer.param_groups):
        for key in GROUP_KEYS:
            assert ours[key] == pytest.approx(theirs[key], rel=RELATIVE), key
