"""Kahan summation for bfloat16 parameters: with a compensation buffer, the kernels store the
rule's float32 result t as s = t + c, param = bf16(s), c = bf16(s - param), in the same pass.
The truth is tests/kernels/bfloat16.py's NumPy transcription of that store after the reference
rule; every ISA and thread count must give its bits."""

import functools

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native
from tests.kernels.bfloat16 import compensated_store, native_step, reference_step, round_to_bfloat16, run, to_float32
from tests.kernels.trajectories import ALL_CASES, SIZES, assert_bitwise_equal, assert_same_trajectory, tensor_steps

STEPS = 6
ISAS = ("avx512", "avx2", "scalar")
needs_native = pytest.mark.skipif(not native.available(), reason="native kernels not built")


def _skip_unless_supported(isa):
    if isa not in native.available_isas():
        pytest.skip(f"this CPU has no {isa}")


def test_the_reference_store_accumulates_updates_below_half_an_ulp():
    # bfloat16 has 8 significant bits: its ulp at 1.0 is 2**-7, so adding 2**-10 rounds away.
    plain = compensated = round_to_bfloat16(np.float32([1.0]))
    compensation = np.zeros(1, np.uint16)
    for step in range(1, 9):
        plain = round_to_bfloat16(to_float32(plain) + np.float32(2.0**-10))
        compensated, compensation = compensated_store(to_float32(compensated) + np.float32(2.0**-10), compensation)
        if step < 4:  # below half an ulp, the remainder is carried
            assert to_float32(compensated)[0] == 1.0 and to_float32(compensation)[0] == step * 2.0**-10
    assert to_float32(plain)[0] == 1.0
    # 8 * 2**-10 = 2**-7: the parameter moved by exactly one ulp and nothing is left over.
    assert to_float32(compensated)[0] == 1.0 + 2.0**-7 and to_float32(compensation)[0] == 0.0


def test_the_reference_store_keeps_the_exact_remainder_when_it_fits_a_bfloat16():
    target = np.float32([1.0 + 2.0**-9 + 2.0**-12, -3.0 - 2.0**-8, 0.75 - 2.0**-12])
    param, compensation = compensated_store(target, np.zeros(3, np.uint16))
    np.testing.assert_array_equal(to_float32(param), to_float32(round_to_bfloat16(target)))
    np.testing.assert_array_equal(to_float32(param) + to_float32(compensation), target)


def _run(case_index, state_dtype, step, kahan=True):
    return run(ALL_CASES[case_index], state_dtype, step, STEPS, kahan=kahan)


@functools.lru_cache(maxsize=None)
def _expected(case_index, state_dtype):
    return _run(case_index, state_dtype, reference_step)


def _assert_same(actual, expected):
    assert_same_trajectory(actual[:2], expected[:2])
    for i, (a, e) in enumerate(zip(actual[2], expected[2], strict=True)):
        assert_bitwise_equal(a, e, f"compensations[{i}] (size {SIZES[i]})")


@needs_native
@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("state_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=[case.id for case in ALL_CASES])
def test_kahan_matches_the_reference_store_bitwise(case_index, state_dtype, isa, num_threads):
    _skip_unless_supported(isa)
    actual = _run(case_index, state_dtype, native_step(isa, num_threads))
    _assert_same(actual, _expected(case_index, state_dtype))


@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=[case.id for case in ALL_CASES])
def test_the_compensation_changes_every_case_trajectory(case_index):
    # Otherwise the bitwise test above could pass with the compensation ignored.
    params, _, compensations = _expected(case_index, "float32")
    plain, _, _ = _run(case_index, "float32", reference_step, kahan=False)
    assert any(np.any(c != 0) for c in compensations)
    assert any(not np.array_equal(a, b) for a, b in zip(params, plain))


@needs_native
@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=[case.id for case in ALL_CASES])
def test_the_first_step_from_zero_compensation_stores_the_plain_rounding(case_index):
    case = ALL_CASES[case_index]
    compensated, _, compensations = run(case, "float32", native_step(None), 1, kahan=True)
    plain, _, _ = run(case, "float32", native_step(None), 1)
    for i, (a, b, c) in enumerate(zip(compensated, plain, compensations)):
        assert_bitwise_equal(a, b, f"params[{i}]")
        # ... and the compensation holds the rounding error.
        assert np.all(np.abs(to_float32(c)) <= np.abs(to_float32(a)) * 2.0**-8)


# Several of the kernels' 32,768-element chunks, starting and ending inside tensors.
LARGE_SIZES = (70_001, 1, 40_000, 17, 4097, 7)


@needs_native
@pytest.mark.parametrize(
    ("spec", "group"),
    [
        (specs.ADAMW, {"lr": 1e-3, "amsgrad": True, "weight_decay": 0.1}),
        (specs.ADADELTA, {"rho": 0.5, "weight_decay": 0.1}),
        (specs.SGD, {"lr": 1e-3, "momentum": 0.9, "nesterov": True}),
        (specs.RMSPROP, {"lr": 1e-4, "centered": True, "momentum": 0.9}),
    ],
    ids=["AdamW-amsgrad", "Adadelta", "SGD-nesterov", "RMSprop-centered"],
)
def test_threads_and_isas_agree_over_several_chunks(spec, group):
    hyper = spec.rule_arguments({**spec.defaults, **group})
    rng = np.random.default_rng(5)
    start = [round_to_bfloat16(rng.standard_normal(n).astype(np.float32)) for n in LARGE_SIZES]
    grads = [[round_to_bfloat16(rng.standard_normal(n).astype(np.float32)) for n in LARGE_SIZES] for _ in range(4)]

    def trajectory(step):
        params = [p.copy() for p in start]
        states = [
            {slot.key: round_to_bfloat16(np.full(p.shape, slot.initial_value(hyper), np.float32))
             for slot in spec.active_slots(hyper) if slot.fill is not None}
            for p in params
        ]
        compensations = [np.zeros(p.shape, np.uint16) for p in params]
        for t, step_grads in enumerate(grads):
            steps = tensor_steps(spec, hyper, range(len(params)), t)
            step(spec, hyper, params, step_grads, states, steps, "bfloat16", compensations)
        return params, states, compensations

    expected = trajectory(reference_step)
    assert all(np.any(c != 0) for c in expected[2])
    for isa in native.available_isas():
        for num_threads in (1, 2):
            actual = trajectory(native_step(isa, num_threads))
            for name, got, want in zip(("params", "states", "compensations"), actual, expected):
                for i, (a, e) in enumerate(zip(got, want, strict=True)):
                    if isinstance(e, dict):
                        assert a.keys() == e.keys()
                        for key in e:
                            assert_bitwise_equal(a[key], e[key], f"{isa}, {num_threads} threads: {name}[{i}][{key!r}]")
                    else:
                        assert_bitwise_equal(a, e, f"{isa}, {num_threads} threads: {name}[{i}]")


def _bfloat16_problem():
    rng = np.random.default_rng(0)
    params = [round_to_bfloat16(rng.standard_normal(n).astype(np.float32)) for n in (7, 17)]
    grads = [round_to_bfloat16(rng.standard_normal(n).astype(np.float32)) for n in (7, 17)]
    states = [{key: np.zeros(p.shape, np.uint16) for key in ("exp_avg", "exp_avg_sq")} for p in params]
    compensations = [np.full(p.shape, 0x3C00, np.uint16) for p in params]  # 2**-7
    return params, grads, states, compensations


@needs_native
@pytest.mark.parametrize(
    ("compensation", "message"),
    [
        (lambda c: [c[0].ctypes.data, 0], r"compensation_ptrs\[1\] is a null pointer for 17 elements"),
        (lambda c: [c[0].ctypes.data], r"compensation_ptrs has 1 entries but there are 2 parameters"),
        (lambda c: [c[0].ctypes.data, "x"], r"compensation_ptrs\[1\] must be an integer, got 'x'"),
    ],
)
def test_bad_compensation_pointers_raise_and_change_nothing(compensation, message):
    params, grads, states, compensations = _bfloat16_problem()
    before = [a.copy() for a in params + grads + compensations + [s[k] for s in states for k in s]]
    with pytest.raises((ValueError, TypeError), match=message):
        native.update_pointers(
            specs.ADAM, {"lr": 1e-3}, "bfloat16", [7, 17],
            [p.ctypes.data for p in params], [g.ctypes.data for g in grads],
            {k: [s[k].ctypes.data for s in states] for k in ("exp_avg", "exp_avg_sq")},
            [1, 1], compensation=compensation(compensations),
        )
    after = params + grads + compensations + [s[k] for s in states for k in s]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
