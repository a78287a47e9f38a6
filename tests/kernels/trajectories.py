"""Trajectories of the shared cases through any backend with the ``update`` contract.

Each case runs on tensors of ``SIZES`` split over its two parameter groups. Within a group the
tensors are at different steps (tensor ``i`` starts at step ``1 + i % 3``), so per-tensor bias
corrections are exercised in one call.
"""

import numpy as np

from adamkit import specs
from tests.cases import NATIVE_CASES, Case

SIZES = (0, 1, 7, 15, 16, 17, 31, 33, 4097)
GROUP_OF_TENSOR = tuple(i % 2 for i in range(len(SIZES)))
STEPS = 12
SPECS = {spec.name: spec for spec in specs.ALL}

# Flags the shared table leaves out: the eps-hat opt-in, centered RMSprop without momentum,
# SGD with every momentum option and a group without momentum, cautious updates.
EXTRA_CASES = (
    Case("Adam", {"lr": 1e-2, "eps_hat": True, "amsgrad": True}, {"eps_hat": False}),
    Case("AdamW", {"eps_hat": True, "eps": 1e-3, "weight_decay": 0.1}, {"amsgrad": True}),
    Case("RMSprop", {"centered": True, "maximize": True, "weight_decay": 0.05}, {"momentum": 0.3}),
    Case(
        "SGD",
        {"lr": 1e-2, "momentum": 0.5, "dampening": 0.5, "nesterov": True, "maximize": True},
        {"momentum": 0.0},
    ),
    # cautious=True: the two passes of csrc/cautious.c, with every branch of its rules.
    Case(
        "Adam",
        {"lr": 1e-2, "cautious": True, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
        {"amsgrad": False},
    ),
    Case("AdamW", {"cautious": True, "eps_hat": True, "weight_decay": 0.1}, {"eps": 1e-3}),
    Case(
        "Lion", {"lr": 1e-2, "cautious": True, "weight_decay": 0.1}, {"decoupled_weight_decay": False, "maximize": True}
    ),
    Case("AdEMAMix", {"lr": 1e-2, "cautious": True, "t_alpha_beta3": 5.0, "weight_decay": 0.1}, {"alpha": 8.0}),
)
ALL_CASES = NATIVE_CASES + EXTRA_CASES
"""The cases of the rules the C kernels step."""


def groups(case):
    """The case's spec and the full hyperparameters of its two groups."""
    spec = SPECS[case.optimizer]
    first = {**spec.defaults, **case.hyper}
    return spec, (first, {**first, **case.second_group})


def initial_state(spec, group, param):
    """The state torch would create: every active slot filled, except rule-created ones."""
    state = {}
    for slot in spec.active_slots(group):
        fill = slot.initial_value(group)
        if fill is not None:
            state[slot.key] = np.full_like(param, fill)
    return state


def initial_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size).astype(dtype) for size in SIZES]


def gradients(dtype, steps=STEPS, seed=1):
    """``result[t][i]``: the gradient of tensor ``i`` at step ``t``; magnitudes over six orders, 5% zeros."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-4, 2, size=len(SIZES))
    result = []
    for _ in range(steps):
        step = []
        for size, scale in zip(SIZES, scales):
            grad = rng.standard_normal(size) * scale
            grad[rng.random(size) < 0.05] = 0.0
            step.append(grad.astype(dtype))
        result.append(step)
    return result


def tensor_count(spec, hyper, step):
    """The rule's per-tensor ``step`` argument at the count ``step`` (``None`` for rules that do
    not count): the count, or, for a rule with scalar state (NAdam's ``mu_product``), what the
    front ends make of it after torch's initial scalar state has been advanced through every
    step up to it (:meth:`adamkit.rules._spec.Spec.count`); for a rule with per-group state
    (Schedule-Free's), what the group's ``advance_group`` returns at that step, the group taking
    ``hyper`` over the spec's defaults (:meth:`adamkit.rules._spec.Spec.group_count`)."""
    if spec.advance_group is not None:
        group = {**spec.defaults, **hyper, **spec.group_state}
        return [spec.group_count(group) for _ in range(int(step))][-1]
    if not spec.counts_steps:
        return None
    hyper = {**spec.defaults, **hyper}
    state = {slot.key: np.array(slot.initial_value(hyper), dtype=np.float32) for slot in spec.scalar_state}
    count = float(step)
    for earlier in range(1, int(step) + 1):
        count = spec.count(state, float(earlier), hyper)
    return count


def tensor_steps(spec, hyper, indices, t, spread=3):
    """The per-tensor step arguments of tensors ``indices`` at iteration ``t`` (0-based), this
    step included (:func:`tensor_count`): tensor ``i`` is ``i % spread`` steps ahead."""
    return [tensor_count(spec, hyper, t + 1 + i % spread) for i in indices]


def run(case, dtype, update, steps=STEPS):
    """The final parameters and states of ``case`` after ``steps`` calls of ``update`` per group.

    ``update(spec, hyperparameters, params, grads, states, steps)`` steps the arrays in place.
    """
    spec, hypers = groups(case)
    params = initial_params(dtype)
    states = [initial_state(spec, hypers[g], p) for p, g in zip(params, GROUP_OF_TENSOR)]
    all_grads = gradients(dtype, steps)

    def step(spec, hyper, t, indices, counts):
        update(spec, hyper, pick(params, indices), pick(all_grads[t], indices), pick(states, indices), counts)

    for_each_group_step(case, steps, step)
    return params, states


def for_each_group_step(case, steps, step):
    """Call ``step(spec, hyperparameters, t, indices, counts)`` for each step ``t`` and each of
    the case's groups in turn: ``indices`` are the group's tensors, ``counts`` their step counts."""
    spec, hypers = groups(case)
    for t in range(steps):
        for g, hyper in enumerate(hypers):
            indices = [i for i, group in enumerate(GROUP_OF_TENSOR) if group == g]
            step(spec, spec.rule_arguments(hyper), t, indices, tensor_steps(spec, hyper, indices, t))


def pick(values, indices):
    return [values[i] for i in indices]


def assert_bitwise_equal(actual, expected, what):
    """``actual`` and ``expected`` hold the same bits (so NaNs and signed zeros count)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    actual_bits = actual.view(f"u{actual.itemsize}")
    expected_bits = expected.view(f"u{expected.itemsize}")
    differ = np.flatnonzero(actual_bits.ravel() != expected_bits.ravel())
    assert differ.size == 0, (
        f"{what}: {differ.size} elements differ, first at {differ[0]}: "
        f"{actual.ravel()[differ[0]]!r} != {expected.ravel()[differ[0]]!r}"
    )


def assert_same_trajectory(actual, expected):
    (actual_params, actual_states), (expected_params, expected_states) = actual, expected
    for i, (a, e) in enumerate(zip(actual_params, expected_params, strict=True)):
        assert_bitwise_equal(a, e, f"params[{i}] (size {SIZES[i]})")
    for i, (a, e) in enumerate(zip(actual_states, expected_states, strict=True)):
        assert a.keys() == e.keys(), f"states[{i}] keys"
        for key in e:
            assert_bitwise_equal(a[key], e[key], f"states[{i}][{key!r}] (size {SIZES[i]})")
