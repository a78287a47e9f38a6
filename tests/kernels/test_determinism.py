"""The native kernels give the same bits whatever the thread count, the instruction set, and
however the tensors are grouped into calls; and worker threads honour the caller's
flush-to-zero setting."""

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native, reference
from tests.kernels.trajectories import assert_bitwise_equal, tensor_steps

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

# About 200,000 elements in 30 tensors: several of the kernels' 32,768-element chunks, which
# start and end inside tensors.
SIZES = np.random.default_rng(7).integers(0, 14_000, size=30).tolist()
STEPS = 3

CASES = {
    "AdamW-amsgrad": (specs.ADAMW, {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1}),
    "Adam-L2-maximize": (specs.ADAM, {"lr": 1e-2, "weight_decay": 0.1, "maximize": True}),
    "Adamax": (specs.ADAMAX, {"lr": 1e-2, "weight_decay": 0.1}),
    "Adadelta": (specs.ADADELTA, {"rho": 0.5, "weight_decay": 0.1}),
    "SGD-nesterov": (specs.SGD, {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
    "Adagrad": (specs.ADAGRAD, {"lr_decay": 0.01, "weight_decay": 0.1}),
    "RMSprop-centered": (specs.RMSPROP, {"centered": True, "momentum": 0.9}),
    "NAdam-decoupled": (specs.NADAM, {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "RAdam-decoupled": (specs.RADAM, {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "ADOPT-decoupled-maximize": (specs.ADOPT, {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    "LAMB-clip-maximize": (specs.LAMB, {"lr": 1e-2, "weight_decay": 0.1, "trust_clip": 0.5, "maximize": True}),
    # cautious=True: whole-tensor counts over blocks of both passes (csrc/cautious.c).
    "AdamW-cautious-amsgrad": (specs.ADAMW, {"lr": 1e-2, "amsgrad": True, "cautious": True}),
    "Lion-cautious-L2": (specs.LION, {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": False, "cautious": True}),
    "AdEMAMix-cautious": (specs.ADEMAMIX, {"lr": 1e-2, "weight_decay": 0.1, "cautious": True}),
    # Schedule-Free: z created as the parameter; each tensor's own (step, lr, ckp1).
    "AdamWScheduleFree-warmup": (
        specs.ADAMWSCHEDULEFREE,
        {"lr": 1e-2, "weight_decay": 0.1, "warmup_steps": 4, "r": 1.0},
    ),
}


def _problem(spec, group, dtype):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(size).astype(dtype) for size in SIZES]
    slots = [slot for slot in spec.active_slots(group) if slot.fill is not None]
    states = [
        {slot.key: np.full_like(param, slot.initial_value(group)) for slot in slots} for param in params
    ]
    grads = [[rng.standard_normal(size).astype(dtype) for size in SIZES] for _ in range(STEPS)]
    return params, states, grads


def _trajectory(name, dtype, update, call_sizes):
    """Run ``STEPS`` steps, updating the tensors in consecutive calls of ``call_sizes`` tensors."""
    spec, overrides = CASES[name]
    group = {**spec.defaults, **overrides}
    hyper = spec.rule_arguments(group)
    params, states, grads = _problem(spec, group, dtype)
    for t in range(STEPS):
        start = 0
        for size in call_sizes:
            chosen = range(start, start + size)
            # Tensors at steps 1 to 9: RAdam's rectification starts at step 6.
            steps = tensor_steps(spec, group, chosen, t, spread=7)
            update(spec, hyper, [params[i] for i in chosen], [grads[t][i] for i in chosen],
                   [states[i] for i in chosen], steps)
            start += size
    return params, states


def _assert_same(actual, expected):
    for i, (a, e) in enumerate(zip(actual[0], expected[0], strict=True)):
        assert_bitwise_equal(a, e, f"params[{i}]")
    for i, (a, e) in enumerate(zip(actual[1], expected[1], strict=True)):
        assert a.keys() == e.keys()
        for key in e:
            assert_bitwise_equal(a[key], e[key], f"states[{i}][{key!r}]")


def _native(isa, num_threads):
    def update(*args):
        native.update(*args, isa=isa, num_threads=num_threads)

    return update


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_threads_grouping_and_isas_give_the_same_bits(name, dtype):
    everything = [len(SIZES)]
    expected = _trajectory(name, dtype, reference.update, everything)
    for isa in native.available_isas():
        _assert_same(_trajectory(name, dtype, _native(isa, 1), everything), expected)
        _assert_same(_trajectory(name, dtype, _native(isa, 2), everything), expected)
    best = native.available_isas()[0]
    one_by_one = [1] * len(SIZES)
    _assert_same(_trajectory(name, dtype, _native(best, 2), one_by_one), expected)
    uneven = [7, 1, 13, 0, len(SIZES) - 21]
    _assert_same(_trajectory(name, dtype, _native(best, 2), uneven), expected)


def test_worker_threads_use_the_callers_flush_to_zero_mode():
    torch = pytest.importorskip("torch")
    # Tiny gradients make subnormal moments, which flush-to-zero changes.
    spec, hyper = specs.ADAM, specs.ADAM.rule_arguments(specs.ADAM.defaults)
    rng = np.random.default_rng(3)
    sizes = [200_000, 150_000]
    grads = [(rng.standard_normal(n) * 1e-20).astype(np.float32) for n in sizes]

    def run(update):
        params = [np.ones(n, np.float32) for n in sizes]
        states = [{"exp_avg": np.zeros(n, np.float32), "exp_avg_sq": np.zeros(n, np.float32)} for n in sizes]
        update(spec, hyper, params, grads, states, [1, 1])
        return params, states

    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        flushed = run(reference.update)
        _assert_same(run(_native(None, 2)), flushed)
    finally:
        torch.set_flush_denormal(False)
    graded = run(reference.update)
    assert not np.array_equal(graded[1][0]["exp_avg_sq"], flushed[1][0]["exp_avg_sq"])
    _assert_same(run(_native(None, 2)), graded)
