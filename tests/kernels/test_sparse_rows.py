"""The lazy sparse step of adamkit.kernels.sparse: the C kernel against the gathered reference
rule, per-row step counts against a hand-written float64 Adam, and bad input."""

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native, reference, sparse
from tests.kernels.trajectories import tensor_count

needs_native = pytest.mark.skipif(not native.available(), reason="the C kernels are not built")

RULE_CASES = {
    # No flag set: the segments' loop without the flags' branches (csrc/rules.h).
    "adam-plain": (specs.ADAM, dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6)),
    "adam-l2-amsgrad": (
        specs.ADAM,
        dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True),
    ),
    "adamw-eps-hat": (
        specs.ADAMW,
        dict(lr=0.02, betas=(0.7, 0.9), eps=1e-3, weight_decay=0.2, eps_hat=True),
    ),
    "adamax": (specs.ADAMAX, dict(lr=0.03, betas=(0.85, 0.97), eps=1e-5, weight_decay=0.05)),
    "adagrad": (specs.ADAGRAD, dict(lr=0.1, lr_decay=0.02, weight_decay=0.1, eps=1e-7)),
    "adadelta": (specs.ADADELTA, dict(lr=0.7, rho=0.85, eps=1e-5, weight_decay=0.1, maximize=True)),
    "nadam": (specs.NADAM, dict(lr=0.02, betas=(0.8, 0.95), momentum_decay=0.05, weight_decay=0.1, maximize=True)),
    "radam": (specs.RADAM, dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, maximize=True)),
    # Rectified, steps 1 to 3 are SGD with momentum (rho_t < 5); unrectified, the adaptive step.
    "adabelief-rectify-l2": (
        specs.ADABELIEF,
        dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, decoupled_weight_decay=False, rectify=True),
    ),
    "adabelief-amsgrad": (
        specs.ADABELIEF,
        dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True),
    ),
    "adopt-decoupled": (specs.ADOPT, dict(lr=0.03, betas=(0.8, 0.95), eps=1e-5, weight_decay=0.1, decoupled_weight_decay=True)),
    "lion": (specs.LION, dict(lr=0.03, betas=(0.85, 0.97), weight_decay=0.1)),
}


def _full(spec, hyper):
    """The rule's keyword arguments: the spec's defaults, then ``hyper``."""
    return {name: {**spec.defaults, **hyper}[name] for name in spec.rule_hyperparameters}


def _table(spec, hyper, rows, width, dtype, seed):
    rng = np.random.default_rng(seed)
    param = rng.standard_normal((rows, width)).astype(dtype)
    state = {
        slot.key: np.abs(rng.standard_normal((rows, width))).astype(dtype)
        for slot in spec.active_slots(_full(spec, hyper))
    }
    return param, state


def _copy(param, state):
    return param.copy(), {key: value.copy() for key, value in state.items()}


def _native_and_reference(spec, hyper, param, state, indices, values, steps):
    """``(param, state)`` after the steps ``steps`` of the native kernel and of the reference,
    each on its own copy, once they are checked to be bitwise equal."""
    fast, slow = _copy(param, state), _copy(param, state)
    for step in (tensor_count(spec, hyper, step) for step in steps):
        sparse.update_rows(spec, _full(spec, hyper), fast[0], indices, values, fast[1], step)
        sparse.update_rows(spec, _full(spec, hyper), slow[0], indices, values, slow[1], step, fused=False)
    assert np.array_equal(fast[0], slow[0])
    for key in state:
        assert np.array_equal(fast[1][key], slow[1][key]), key
    return fast


@needs_native
@pytest.mark.parametrize("case", RULE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n_rows", "width", "touched"), [(7, 1, [0, 3, 6]), (17, 7, [2, 5, 16]), (5, 4097, [1, 4])])
def test_native_rows_equal_the_reference_rows_bitwise(case, dtype, n_rows, width, touched):
    spec, hyper = RULE_CASES[case]
    param, state = _table(spec, hyper, n_rows, width, dtype, seed=width)
    rows = np.array(touched, dtype=np.int64)
    values = np.random.default_rng(1).standard_normal((len(rows), width)).astype(dtype)
    # Step 7 is past RAdam's rectification threshold.
    fast = _native_and_reference(spec, hyper, param, state, rows, values, (1.0, 2.0, 7.0))
    untouched = np.setdiff1d(np.arange(n_rows), rows)
    assert np.array_equal(fast[0][untouched], param[untouched])
    for key in state:
        assert np.array_equal(fast[1][key][untouched], state[key][untouched]), key
    assert not np.array_equal(fast[0][rows], param[rows])


@needs_native
@pytest.mark.parametrize("case", RULE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# Rows of 2053 elements fill the kernel's batch of summed rows (64 KiB) with 3 or 7 rows.
@pytest.mark.parametrize("width", [1, 7, 17, 2053])
def test_repeated_unsorted_indices_are_summed_in_their_order(case, dtype, width):
    """Entries of a repeated row are summed in their given order, then the row takes one step:
    the same bits on both paths, and as if the caller had summed them."""
    spec, hyper = RULE_CASES[case]
    param, state = _table(spec, hyper, 17, width, dtype, seed=10)
    # 600 entries over 17 rows: chunks of entries split the runs of repeated rows.
    indices = np.random.default_rng(11).integers(0, 17, 600).astype(np.int64)
    indices[indices == 6] = 7  # row 6 is never touched
    values = np.random.default_rng(12).standard_normal((600, width)).astype(dtype)
    summed_rows = np.unique(indices)
    summed = np.stack([values[indices == row].cumsum(axis=0, dtype=dtype)[-1] for row in summed_rows])
    fast, slow, by_hand = _copy(param, state), _copy(param, state), _copy(param, state)
    step = tensor_count(spec, hyper, 2)
    sparse.update_rows(spec, _full(spec, hyper), fast[0], indices, values, fast[1], step, num_threads=2)
    sparse.update_rows(spec, _full(spec, hyper), slow[0], indices, values, slow[1], step, fused=False)
    sparse.update_rows(spec, _full(spec, hyper), by_hand[0], summed_rows, summed, by_hand[1], step)
    for other in (slow, by_hand):
        assert np.array_equal(fast[0], other[0])
        for key in state:
            assert np.array_equal(fast[1][key], other[1][key]), key
    assert np.array_equal(fast[0][6], param[6])


def _entries(n_rows, arrangement, rng):
    """600 row indices below ``n_rows``, the first and last rows among them, arranged (601 for
    ``in-order-but-the-last``)."""
    indices = np.concatenate([[0, n_rows - 1], rng.integers(0, n_rows, 598)]).astype(np.int64)
    if arrangement == "sorted-with-repeats":
        return np.sort(indices)
    if arrangement == "strictly-increasing":
        return np.unique(indices)
    if arrangement == "in-order-but-the-last":
        # Row 0 again after the last: one descent, at the very end, and row 0 split in two runs.
        return np.append(np.sort(indices), 0)
    return indices


@needs_native
@pytest.mark.parametrize(
    "arrangement", ["shuffled", "sorted-with-repeats", "strictly-increasing", "in-order-but-the-last"]
)
# Row counts for 0, 1, 2 and 3 passes of the radix sort (11 bits each), and either side of 2^11.
@pytest.mark.parametrize("n_rows", [1, 2048, 2049, 5000, (1 << 22) + 3])
def test_the_kernels_row_order_gives_the_reference_bits(n_rows, arrangement):
    """However the indices come, the kernel orders them (a radix sort over the bits of the row
    count, or none when they are already in order) as the reference's stable argsort does."""
    spec, hyper = RULE_CASES["adam-l2-amsgrad"]
    rng = np.random.default_rng(n_rows)
    param, state = _table(spec, hyper, n_rows, 1, np.float32, seed=13)
    indices = _entries(n_rows, arrangement, rng)
    values = rng.standard_normal((len(indices), 1)).astype(np.float32)
    fast = _native_and_reference(spec, hyper, param, state, indices, values, (3.0,))
    touched = np.unique(indices)
    assert not np.array_equal(fast[0][touched], param[touched])


def _rows_around_the_prefetch(n_rows, touched, arrangement, rng):
    """``touched`` distinct rows of ``n_rows``, the first and last among them (if two or more),
    sorted; or shuffled with about one repeat per row."""
    middle = rng.choice(np.arange(1, n_rows - 1), size=max(touched - 2, 0), replace=False)
    rows = np.sort(np.concatenate([[0, n_rows - 1][: min(touched, 2)], middle])).astype(np.int64)
    if arrangement == "sorted-distinct":
        return rows
    repeats = rng.choice(rows, size=len(rows))
    return rng.permutation(np.concatenate([rows, repeats]))


@needs_native
@pytest.mark.parametrize("case", ["adam-plain", "adam-l2-amsgrad", "adadelta"])
@pytest.mark.parametrize("arrangement", ["sorted-distinct", "shuffled-with-repeats"])
# The kernel prefetches 4 rows and 16 entries ahead, within batches of up to 256 entries: fewer
# rows than either distance, exactly as many, one more, and batches that end on and past them.
@pytest.mark.parametrize("touched_rows", [1, 2, 3, 4, 5, 16, 17, 255, 256, 257, 700])
def test_the_prefetching_kernel_steps_exactly_the_touched_rows(case, arrangement, touched_rows):
    """Whatever the number of rows against the prefetch distances, with the table's first and
    last rows touched: the reference's bits, and the untouched rows unchanged."""
    spec, hyper = RULE_CASES[case]
    rng = np.random.default_rng(touched_rows)
    n_rows, width = 1031, 17
    param, state = _table(spec, hyper, n_rows, width, np.float32, seed=touched_rows)
    indices = _rows_around_the_prefetch(n_rows, touched_rows, arrangement, rng)
    values = rng.standard_normal((len(indices), width)).astype(np.float32)
    fast = _native_and_reference(spec, hyper, param, state, indices, values, (2.0,))
    touched = np.unique(indices)
    ends = {0, n_rows - 1} if touched_rows > 1 else {0}
    assert len(touched) == touched_rows and ends <= set(touched)
    untouched = np.setdiff1d(np.arange(n_rows), touched)
    assert np.array_equal(fast[0][untouched], param[untouched])
    assert (fast[0][touched] != param[touched]).any(axis=1).all()


@pytest.mark.parametrize("fused", [None, False])
def test_touched_rows_take_the_dense_step_of_the_rule(fused):
    """Each touched row gets exactly what the reference backend's dense step gives that row."""
    spec, hyper = RULE_CASES["adam-l2-amsgrad"]
    param, state = _table(spec, hyper, 17, 7, np.float64, seed=3)
    rows = np.array([0, 9, 16], dtype=np.int64)
    values = np.random.default_rng(4).standard_normal((3, 7))
    dense_param, dense_state = param[rows], {key: value[rows] for key, value in state.items()}
    reference.update(spec, _full(spec, hyper), [dense_param], [values], [dense_state], [4.0])
    sparse.update_rows(spec, _full(spec, hyper), param, rows, values, state, 4.0, fused=fused)
    assert np.array_equal(param[rows], dense_param)
    for key in state:
        assert np.array_equal(state[key][rows], dense_state[key]), key


def _adam_row_by_hand(param, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@pytest.mark.parametrize("fused", [None, False])
def test_row_steps_give_each_row_its_own_bias_correction(fused):
    lr, beta1, beta2, eps = 0.05, 0.8, 0.9, 1e-6
    hyper = _full(specs.ADAM, dict(lr=lr, betas=(beta1, beta2), eps=eps))
    rng = np.random.default_rng(5)
    param = rng.standard_normal((17, 7))
    state = {"exp_avg": np.zeros((17, 7)), "exp_avg_sq": np.zeros((17, 7))}
    row_steps = np.zeros(17, dtype=np.int64)
    expected = {row: (param[row].copy(), np.zeros(7), np.zeros(7), 0) for row in range(17)}
    schedule = [[1, 4], [4], [0, 4, 16], [1, 16]]
    for step, touched in enumerate(schedule, start=1):
        rows = np.array(touched, dtype=np.int64)
        values = rng.standard_normal((len(rows), 7))
        sparse.update_rows(
            specs.ADAM, hyper, param, rows, values, state, float(step), row_steps=row_steps, fused=fused
        )
        for row, grad in zip(touched, values):
            p, m, v, t = expected[row]
            expected[row] = (*_adam_row_by_hand(p, grad, m, v, t + 1, lr, beta1, beta2, eps), t + 1)
    assert row_steps.tolist() == [expected[row][3] for row in range(17)]
    assert row_steps[4] == 3 and row_steps[2] == 0
    for row in range(17):
        np.testing.assert_allclose(param[row], expected[row][0], rtol=1e-12, atol=0)
        np.testing.assert_allclose(state["exp_avg"][row], expected[row][1], rtol=1e-12, atol=0)


def _bad_inputs():
    good_rows = np.array([1, 3], dtype=np.int64)
    good_values = np.ones((2, 7))
    return {
        "row-out-of-range": (np.array([1, 17], dtype=np.int64), good_values, {}, ValueError, "[0, 17)"),
        "negative-row": (np.array([-1, 3], dtype=np.int64), good_values, {}, ValueError, "[0, 17)"),
        "int32-rows": (good_rows.astype(np.int32), good_values, {}, TypeError, "int64"),
        "values-shape": (good_rows, np.ones((2, 6)), {}, ValueError, "(2, 7)"),
        "values-dtype": (good_rows, np.ones((2, 7), np.float32), {}, ValueError, "float32"),
        "row-steps-shape": (good_rows, good_values, {"row_steps": np.zeros(16, np.int64)}, ValueError, "(17,)"),
    }


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("name", list(_bad_inputs()))
def test_bad_input_raises_and_changes_nothing(name, fused):
    rows, values, extra, error, words = _bad_inputs()[name]
    spec, hyper = RULE_CASES["adam-l2-amsgrad"]
    param, state = _table(spec, hyper, 17, 7, np.float64, seed=6)
    before = _copy(param, state)
    with pytest.raises(error) as raised:
        sparse.update_rows(spec, _full(spec, hyper), param, rows, values, state, 1.0, fused=fused, **extra)
    assert words in str(raised.value)
    assert np.array_equal(param, before[0])
    for key in state:
        assert np.array_equal(state[key], before[1][key])


def test_a_state_of_the_wrong_shape_or_dtype_or_missing_raises():
    spec, hyper = RULE_CASES["adam-l2-amsgrad"]
    param, state = _table(spec, hyper, 17, 7, np.float64, seed=7)
    rows, values = np.array([2], dtype=np.int64), np.ones((1, 7))
    with pytest.raises(ValueError, match="exp_avg_sq"):
        sparse.update_rows(spec, _full(spec, hyper), param, rows, values, {**state, "exp_avg_sq": np.ones(7)}, 1.0)
    with pytest.raises(ValueError, match="float32"):
        sparse.update_rows(
            spec, _full(spec, hyper), param, rows, values, {**state, "exp_avg": state["exp_avg"].astype(np.float32)}, 1.0
        )
    del state["max_exp_avg_sq"]
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        sparse.update_rows(spec, _full(spec, hyper), param, rows, values, state, 1.0)


def test_a_rule_that_creates_its_state_has_no_lazy_step():
    param = np.ones((3, 2))
    with pytest.raises(TypeError, match="SGD"):
        sparse.update_rows(
            specs.SGD, _full(specs.SGD, dict(momentum=0.9)), param, np.array([0], np.int64), np.ones((1, 2)), {}, None
        )


@needs_native
def test_the_result_does_not_depend_on_the_thread_count():
    spec, hyper = RULE_CASES["adamw-eps-hat"]
    param, state = _table(spec, hyper, 3000, 1025, np.float32, seed=8)
    # Repeated rows, and more gradient elements (6000 × 1025) than csrc/sparse.c steps on one
    # thread (AK_SPARSE_MIN_PARALLEL), in many chunks of entries.
    rows = np.random.default_rng(9).integers(0, 3000, 6000).astype(np.int64)
    values = np.random.default_rng(9).standard_normal((len(rows), 1025)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        p, s = _copy(param, state)
        sparse.update_rows(spec, _full(spec, hyper), p, rows, values, s, 5.0, num_threads=threads)
        results.append((p, s))
    for p, s in results[1:]:
        assert np.array_equal(p, results[0][0])
        for key in s:
            assert np.array_equal(s[key], results[0][1][key]), key


@needs_native
@pytest.mark.parametrize(
    ("indices", "n_rows", "expected"),
    [
        ([], 17, -1),
        ([0, 16, 3], 17, -1),
        ([0, 17, 3], 17, 1),
        ([-1, 2], 17, 0),
        ([4, 5, 16, -3], 17, 3),
        ([2**62], 17, 0),
        ([3, 2**63 - 1], 17, 1),
        ([3, -(2**63)], 17, 1),
        ([3, -(2**63) + 16], 17, 1),
        ([0], 0, 0),
        ([2**63 - 2, 0], 2**63 - 1, -1),
        ([0, 2**63 - 1], 2**63 - 1, 1),
        # The first bad index far into the entries, after good ones and before more bad ones.
        ([*range(16)] * 300 + [17, 5, -1], 17, 4800),
    ],
)
def test_first_row_out_of_range_reads_the_indices_in_place(indices, n_rows, expected):
    array = np.array(indices, dtype=np.int64)
    assert sparse.first_row_out_of_range(array.ctypes.data, len(array), n_rows) == expected


@needs_native
def test_the_pointer_kernel_names_a_missing_slot_or_step_and_changes_nothing():
    spec, hyper = RULE_CASES["adam-l2-amsgrad"]
    param, state = _table(spec, hyper, 17, 7, np.float64, seed=14)
    before = _copy(param, state)
    rows, values = np.array([2, 5], dtype=np.int64), np.ones((2, 7))
    kernel = sparse.RowKernel(spec, _full(spec, hyper))
    pointers = {key: array.ctypes.data for key, array in state.items()}
    arguments = ("float64", 17, 7, param.ctypes.data, rows.ctypes.data, 2, values.ctypes.data)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        kernel(*arguments, {k: v for k, v in pointers.items() if k != "max_exp_avg_sq"}, 1.0)
    with pytest.raises(TypeError, match="step"):
        kernel(*arguments, pointers, None)
    assert np.array_equal(param, before[0])
    kernel(*arguments, pointers, 1.0)
    expected = _copy(*before)
    sparse.update_rows(spec, _full(spec, hyper), expected[0], rows, values, expected[1], 1.0, fused=False)
    assert np.array_equal(param, expected[0])


def test_hyperparameters_are_checked_when_the_pointer_kernel_is_made():
    spec, hyper = RULE_CASES["adam-plain"]
    with pytest.raises(ValueError, match="lr"):
        sparse.RowKernel(spec, _full(spec, {**hyper, "lr": -1.0}))
