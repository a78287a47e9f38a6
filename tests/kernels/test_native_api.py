"""The contract of adamkit.kernels.native: its entry points, what they reject, and the fallback
to the reference backend when the extension was not built."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adamkit import specs
from adamkit.kernels import native, plan_checks, reference

needs_native = pytest.mark.skipif(not native.available(), reason="native kernels not built")

ADAM = specs.ADAM.rule_arguments({**specs.ADAM.defaults, "lr": 1e-2, "amsgrad": True})


def _adam_problem(dtype="float32", sizes=(7, 17)):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [rng.standard_normal(n).astype(dtype) for n in sizes]
    states = [
        {key: np.zeros(n, dtype) for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
        for n in sizes
    ]
    return params, grads, states


def _snapshot(*trees):
    return [np.copy(a) for tree in trees for a in _arrays(tree)]


def _arrays(tree):
    if isinstance(tree, np.ndarray):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from _arrays(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _arrays(value)


def _assert_unchanged(before, *trees):
    after = [a for tree in trees for a in _arrays(tree)]
    assert len(before) == len(after)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@needs_native
def test_isas_name_the_instruction_sets_best_first():
    isas = native.available_isas()
    assert isas[-1] == "scalar"
    assert set(isas) <= {"avx512", "avx2", "scalar"}
    assert list(isas) == [isa for isa in ("avx512", "avx2", "scalar") if isa in isas]


@needs_native
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_any_shape_is_stepped_like_the_reference(dtype):
    rng = np.random.default_rng(1)
    shapes = [(), (3, 5), (2, 1, 9), (0, 4)]
    params = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    expected = [p.copy() for p in params]
    states = [{"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)} for p in params]
    expected_states = [{k: v.copy() for k, v in s.items()} for s in states]
    hyper = {"lr": 0.1, "weight_decay": 0.2}
    native.update(specs.ADAM, hyper, params, grads, states, [1, 2, 3, 4])
    reference.update(specs.ADAM, hyper, expected, grads, expected_states, [1, 2, 3, 4])
    for p, e in zip(params, expected):
        assert p.shape == e.shape
        np.testing.assert_array_equal(p.view(f"u{p.itemsize}"), e.view(f"u{e.itemsize}"))


@needs_native
def test_missing_hyperparameters_take_the_rules_defaults():
    for spec in (specs.ADAM, specs.RMSPROP, specs.ADADELTA):
        params, grads, _ = _adam_problem("float64")
        slots = [s.key for s in spec.active_slots(spec.defaults)]
        states = [{key: np.zeros_like(p) for key in slots} for p in params]
        expected = [p.copy() for p in params]
        expected_states = [{k: v.copy() for k, v in s.items()} for s in states]
        native.update(spec, {}, params, grads, states, [3, 3])
        reference.update(spec, {}, expected, grads, expected_states, [3, 3])
        for p, e in zip(params, expected):
            np.testing.assert_array_equal(p, e)


@needs_native
@pytest.mark.parametrize("entry", ["update", "update_pointers"])
def test_sgd_creates_its_momentum_buffer_on_the_first_step(entry):
    hyper = {"lr": 0.1, "momentum": 0.9, "dampening": 0.25, "nesterov": False, "weight_decay": 0.1,
             "maximize": True}
    rng = np.random.default_rng(2)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    existing = rng.standard_normal(5)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    states = [{}, {"momentum_buffer": existing.copy()}]
    expected, expected_states = [p.copy() for p in params], [{}, {"momentum_buffer": existing.copy()}]
    reference.update(specs.SGD, hyper, expected, grads, expected_states, [None, None])
    if entry == "update":
        native.update(specs.SGD, hyper, params, grads, states, [None, None])
    else:
        states[0]["momentum_buffer"] = np.full((3, 4), np.nan)  # allocated, not initialised
        native.update_pointers(
            specs.SGD, hyper, "float64", [12, 5], [p.ctypes.data for p in params],
            [g.ctypes.data for g in grads],
            {"momentum_buffer": [s["momentum_buffer"].ctypes.data for s in states]},
            [None, None], created=[True, False],
        )
    for state, expected_state in zip(states, expected_states):
        buffer = state["momentum_buffer"]
        assert buffer.shape == expected_state["momentum_buffer"].shape
        assert buffer.flags.c_contiguous and buffer.dtype == np.float64
        np.testing.assert_array_equal(buffer, expected_state["momentum_buffer"])
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p, e)


@needs_native
def test_update_accepts_int64_arrays_of_pointers():
    params, grads, states = _adam_problem()
    expected, _, expected_states = _adam_problem()
    reference.update(specs.ADAM, ADAM, expected, grads, expected_states, [2, 5])
    native.update_pointers(
        specs.ADAM, ADAM, np.float32, np.array([p.size for p in params]),
        np.array([p.ctypes.data for p in params], dtype=np.uint64),
        np.array([g.ctypes.data for g in grads], dtype=np.int64),
        {k: np.array([s[k].ctypes.data for s in states], dtype=np.uint64) for k in states[0]},
        np.array([2.0, 5.0]),
    )
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p, e)


def _noncontiguous_param():
    params, grads, states = _adam_problem(sizes=(7, 8))
    params[1] = np.zeros(16, np.float32)[::2]
    return params, grads, states, ValueError, r"params\[1\] must be a C-contiguous, writable array"


def _noncontiguous_grad():
    params, grads, states = _adam_problem(sizes=(7, 8))
    grads[1] = np.ones((8, 2), np.float32)[:, 0]
    return params, grads, states, ValueError, r"grads\[1\] must be a C-contiguous array"


def _transposed_state():
    params, grads, states = _adam_problem(sizes=(7, 6))
    params[1], grads[1] = params[1].reshape(2, 3), grads[1].reshape(2, 3)
    states[1]["exp_avg_sq"] = np.zeros((3, 2), np.float32).T
    return params, grads, states, ValueError, r"states\[1\]\['exp_avg_sq'\] must be a C-contiguous"


def _read_only_param():
    params, grads, states = _adam_problem()
    params[1].flags.writeable = False
    return params, grads, states, ValueError, r"params\[1\] must be a C-contiguous, writable array"


def _mixed_dtypes():
    params, grads, states = _adam_problem()
    grads[1] = grads[1].astype(np.float64)
    return params, grads, states, TypeError, r"grads\[1\] has dtype float64, expected float32"


def _float16_params():
    params, grads, states = _adam_problem("float16")
    return params, grads, states, TypeError, r"params\[0\] has dtype float16"


def _wrong_state_size():
    params, grads, states = _adam_problem()
    states[1]["exp_avg"] = np.zeros(16, np.float32)
    message = r"states\[1\]\['exp_avg'\] has 16 elements but params\[1\] has 17"
    return params, grads, states, ValueError, message


def _missing_state():
    params, grads, states = _adam_problem()
    del states[1]["max_exp_avg_sq"]
    message = r"states\[1\]\['max_exp_avg_sq'\] must be a NumPy array, got None"
    return params, grads, states, TypeError, message


def _list_param():
    params, grads, states = _adam_problem()
    params[1] = [0.0] * 17
    return params, grads, states, TypeError, r"params\[1\] must be a NumPy array, got list"


@needs_native
@pytest.mark.parametrize(
    "make",
    [_noncontiguous_param, _noncontiguous_grad, _transposed_state, _read_only_param, _mixed_dtypes,
     _float16_params, _wrong_state_size, _missing_state, _list_param],
)
def test_bad_arrays_raise_and_change_nothing(make):
    params, grads, states, error, message = make()
    before = _snapshot(params, grads, states)
    with pytest.raises(error, match=message):
        native.update(specs.ADAM, ADAM, params, grads, states, [1, 1])
    _assert_unchanged(before, params, grads, states)


@needs_native
@pytest.mark.parametrize(
    ("hyper", "steps", "kwargs", "error", "message"),
    [
        ({**ADAM, "momentum": 0.9}, [1, 1], {}, TypeError, r"unexpected hyperparameters \['momentum'\]"),
        ({**ADAM, "lr": -1.0}, [1, 1], {}, ValueError, r"Invalid lr: -1.0"),
        ({**ADAM, "amsgrad": "yes"}, [1, 1], {}, TypeError, r"amsgrad must be True or False"),
        (ADAM, [1], {}, ValueError, r"steps has 1 entries but there are 2 params"),
        (ADAM, [1, None], {}, TypeError, r"steps\[1\] must be a number, got None"),
        (ADAM, [1, 1], {"isa": "avx1024"}, ValueError, r"Invalid isa: 'avx1024'"),
        (ADAM, [1, 1], {"num_threads": 0}, ValueError, r"Invalid num_threads: 0"),
        (ADAM, [1, 1], {"num_threads": 1.5}, ValueError, r"Invalid num_threads: 1.5"),
    ],
)
def test_bad_arguments_raise_and_change_nothing(hyper, steps, kwargs, error, message):
    params, grads, states = _adam_problem()
    before = _snapshot(params, grads, states)
    with pytest.raises(error, match=message):
        native.update(specs.ADAM, hyper, params, grads, states, steps, **kwargs)
    _assert_unchanged(before, params, grads, states)


@needs_native
def test_sgd_does_not_add_a_buffer_when_the_call_fails():
    params = [np.zeros(3), np.zeros(4)]
    grads = [np.ones(3), np.ones(5)]
    states = [{}, {}]
    with pytest.raises(ValueError, match=r"grads\[1\] has 5 elements but params\[1\] has 4"):
        native.update(specs.SGD, {"momentum": 0.9}, params, grads, states, [None, None])
    assert states == [{}, {}]


@needs_native
@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(state_ptrs={"exp_avg": [0, 0]}), ValueError, r"state_ptrs is missing 'exp_avg_sq'"),
        (dict(state_ptrs={"exp_avg": [0, 0], "exp_avg_sq": [0, 0], "sum": [0, 0]}), ValueError,
         r"state_ptrs has keys \['sum'\]"),
        (dict(dtype="float16"), ValueError, r"Invalid dtype: 'float16'"),
        (dict(dtype="float64", state_dtype="bfloat16"), ValueError,
         r"dtype float64 with state_dtype bfloat16 is not supported"),
        (dict(state_dtype="bfloat16"), ValueError,
         r"rounding_seeds are for float32 parameters with bfloat16 state, and those need them"),
        (dict(rounding_seeds=[1, 2]), ValueError,
         r"rounding_seeds are for float32 parameters with bfloat16 state"),
        (dict(numels=[7, -1]), ValueError, r"numels\[1\] must be >= 0, got -1"),
        (dict(grad_ptrs=[1, 0]), ValueError, r"grad_ptrs\[1\] is a null pointer for 17 elements"),
        (dict(param_ptrs=[1]), ValueError, r"param_ptrs has 1 entries but there are 2 parameters"),
        (dict(param_ptrs=[1, "x"]), TypeError, r"param_ptrs\[1\] must be an integer, got 'x'"),
        (dict(created=[True, False]), ValueError, r"created is only for rules that create a state slot"),
        (dict(compensation=[1, 1]), ValueError,
         r"compensation is only for bfloat16 parameters .*got dtype float32"),
    ],
)
def test_update_pointers_rejects_bad_arguments(change, error, message):
    params, grads, states = _adam_problem()
    hyper = {**ADAM, "amsgrad": False}
    arguments = dict(
        spec=specs.ADAM, hyperparameters=hyper, dtype="float32", numels=[7, 17],
        param_ptrs=[p.ctypes.data for p in params], grad_ptrs=[g.ctypes.data for g in grads],
        state_ptrs={k: [s[k].ctypes.data for s in states] for k in ("exp_avg", "exp_avg_sq")},
        steps=[1, 1],
    )
    before = _snapshot(params, grads, states)
    with pytest.raises(error, match=message):
        native.update_pointers(**{**arguments, **change})
    _assert_unchanged(before, params, grads, states)


def test_without_the_extension_update_falls_back_and_warns_once(monkeypatch):
    monkeypatch.setattr(native, "_native", None)
    monkeypatch.setattr(native, "_UNAVAILABLE_REASON", "no compiler (simulated)")
    monkeypatch.setattr(native, "_warned", False)
    params, grads, states = _adam_problem()
    expected, _, expected_states = _adam_problem()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in (1, 2):
            native.update(specs.ADAM, ADAM, params, grads, states, [step, step])
            reference.update(specs.ADAM, ADAM, expected, grads, expected_states, [step, step])
    assert [w.category for w in caught] == [native.NativeKernelsUnavailableWarning]
    assert "no compiler (simulated)" in str(caught[0].message)
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p, e)
    assert not native.available()
    assert native.available_isas() == ()
    with pytest.raises(RuntimeError, match="needs the native kernels"):
        native.update(specs.ADAM, ADAM, params, grads, states, [3, 3], isa="scalar")
    with pytest.raises(RuntimeError, match="needs the native kernels"):
        native.update_pointers(specs.ADAM, ADAM, "float32", [], [], [], {}, [])


def test_set_num_threads_sets_the_default_and_rejects_bad_values():
    from adamkit import kernels

    try:
        kernels.set_num_threads(1)
        assert native.resolved_threads(None) == 1
        assert native.resolved_threads(2) == 2
        with pytest.raises(ValueError, match=r"num_threads: 0"):
            kernels.set_num_threads(0)
        assert native.resolved_threads(None) == 1
    finally:
        kernels.set_num_threads(None)
    assert native.resolved_threads(None) >= 1


class _Box:
    def __init__(self, value):
        self.value = value


@needs_native
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 16, 17, 100])
def test_attributes_reads_every_objects_attribute_in_order_whatever_the_objects(count):
    # Objects of every layout (instances, dicts, ints, arrays, bare object()s): the prefetching
    # reads words inside each of them, and must never change a value.
    kinds = [_Box, lambda i: {"value": i}, lambda i: i, lambda i: np.arange(i % 5), lambda i: object()]
    objects = [kinds[i % len(kinds)](i) for i in range(count)]
    assert plan_checks.attributes(objects, "__class__") == [type(o) for o in objects]
    boxes = [_Box(o) for o in objects]
    values = plan_checks.attributes(boxes, "value")
    assert len(values) == count and all(v is o for v, o in zip(values, objects))


@needs_native
def test_attributes_raises_what_getattr_raises():
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        plan_checks.attributes([_Box(1)] * 20, "missing")
    with pytest.raises(TypeError):
        plan_checks.attributes((_Box(1),), "value")


class HashedById:
    """A key hashed as torch.Tensor is: hash(key) == id(key)."""

    def __hash__(self):
        return id(self)


@needs_native
def test_same_items_and_same_entries_compare_by_identity():
    first, second = object(), object()
    dicts = [{"k": first}, {"k": second}]
    assert plan_checks.same_items(dicts, "k", [first, second])
    assert not plan_checks.same_items(dicts, "k", [second, first])
    assert not plan_checks.same_items(dicts, "k", [first])
    assert not plan_checks.same_items([{"k": first}, {}], "k", [first, second])  # a missing key
    assert not plan_checks.same_items([{"k": first}, None], "k", [first, second])  # not a dict
    for keys in ([object(), object()], [HashedById(), HashedById()]):
        hashed = plan_checks.identity_hashed(keys)
        assert hashed is isinstance(keys[0], HashedById)
        container = dict(zip(keys, (first, second)))
        assert plan_checks.same_entries(container, keys, [first, second], hashed)
        assert not plan_checks.same_entries(container, keys, [second, first], hashed)
        assert not plan_checks.same_entries({keys[0]: first}, keys, [first, second], hashed)


def test_identity_hashed_tells_keys_hashed_by_id_from_others():
    assert plan_checks.identity_hashed([HashedById(), HashedById()])
    assert not plan_checks.identity_hashed([HashedById(), "a string"])
    assert not plan_checks.identity_hashed([object()])


@needs_native
def test_data_pointers_reads_each_arrays_pointer():
    arrays = [np.zeros(3, np.float32), np.ones((2, 5)), np.zeros(0, np.float32)]
    pointers = plan_checks.data_pointers(arrays)
    assert pointers.dtype == np.int64
    assert pointers.tolist() == [array.ctypes.data for array in arrays]
    with pytest.raises(TypeError, match=r"arrays\[1\] must be a NumPy array, got list"):
        plan_checks.data_pointers([arrays[0], [1.0, 2.0]])


@needs_native
def test_checked_pointers_reads_pointers_only_of_tensors_that_fit():
    torch = pytest.importorskip("torch")
    a, b = torch.zeros(6), torch.zeros(2, 3)
    pointers = [a.data_ptr(), b.data_ptr()]
    assert plan_checks.checked_pointers([a, b]) == pointers
    assert plan_checks.checked_pointers([a, b], torch.float32, [a.shape, b.shape]) == pointers
    assert plan_checks.checked_pointers([a, b], torch.float32, [6, 6]) == pointers  # numbers of elements
    assert plan_checks.checked_pointers([a, b], torch.float32, [a.shape, (3, 2)]) is None  # another shape
    assert plan_checks.checked_pointers([a, b], torch.float32, [6, 5]) is None
    assert plan_checks.checked_pointers([a, b], torch.float64) is None
    assert plan_checks.checked_pointers([a, b.t()]) is None  # not contiguous
    assert plan_checks.checked_pointers([a, b], None, [6]) is None  # sizes of another length


@needs_native
@pytest.mark.parametrize(
    ("pointers", "lengths", "expected"),
    [
        ([0, 20, 40], [10, 10, 10], -1),  # touching is not overlapping
        ([5, 60], [10, 4], 0),
        ([60, 35], [4, 1], 1),
        ([99, 15], [1, 0], -1),  # an empty range overlaps nothing
        ([200, 25], [10, 100], 1),  # a range that covers another
    ],
)
def test_first_overlap_finds_the_first_range_that_meets_sorted_disjoint_ranges(pointers, lengths, expected):
    starts, ends = np.array([10, 30, 100], np.int64), np.array([20, 40, 150], np.int64)
    assert plan_checks.first_in_ranges(starts, ends, pointers, np.array(lengths, np.int64)) == expected


def _spans_overlap(a, b):
    """Whether the bytes from the lowest to past the highest element of a and b meet."""
    return bool(a.size and b.size and np.may_share_memory(a, b))


@st.composite
def _views_of_one_buffer(draw):
    """Arrays over one buffer (slices with steps of either sign, 2-d views, empty ones) and
    apart from it, and how many of them are written."""
    buffer = np.zeros(64, np.float32)
    arrays = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            arrays.append(np.zeros(draw(st.integers(0, 5)), np.float32))
            continue
        start, stop = sorted(draw(st.lists(st.integers(0, 64), min_size=2, max_size=2)))
        step = draw(st.sampled_from([1, 2, 3, -1, -2]))
        view = buffer[start:stop:step] if step > 0 else buffer[stop - 1 : start - 1 if start else None : step]
        if view.size % 2 == 0 and view.size and draw(st.booleans()):
            view = view.reshape(2, -1)
        arrays.append(view)
    return arrays, draw(st.integers(0, len(arrays)))


@needs_native
@settings(max_examples=200, deadline=None)
@given(case=_views_of_one_buffer())
def test_first_overlap_names_a_written_array_and_one_it_overlaps(case):
    arrays, n_written = case
    expected = any(
        _spans_overlap(arrays[i], arrays[j]) for i in range(len(arrays)) for j in range(i + 1, len(arrays)) if i < n_written
    )
    found = plan_checks.first_overlap(arrays, n_written)
    assert (found is not None) == expected
    if found is not None:
        i, j = found
        assert i < j and i < n_written and _spans_overlap(arrays[i], arrays[j])
    extension = plan_checks._native
    try:
        plan_checks._native = None  # the fallback, for builds without the extension
        assert plan_checks.first_overlap(arrays, n_written) == found
    finally:
        plan_checks._native = extension


@needs_native
def test_first_overlap_rejects_what_is_not_an_array():
    with pytest.raises(TypeError, match=r"arrays\[1\] must be a NumPy array, got list"):
        plan_checks.first_overlap([np.zeros(2), [1.0]], 1)


def _plan_tables(states, arrays):
    """The tables arrays_as_planned takes, for ``states`` and ``arrays`` as they are now."""
    items = np.array([n for state in states for n in (len(state), *(id(o) for kv in state.items() for o in kv))], np.int64)
    records = np.array([(a.ctypes.data, a.dtype.num, a.ndim) for a in arrays], np.int64).reshape(-1, 3)
    dims = np.array([d for a in arrays for d in a.shape], np.int64)
    ranges = np.array(sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays if a.nbytes), np.int64)
    return states, items, arrays, records, dims, ranges.reshape(-1, 2), np.zeros(len(arrays), np.int64)


@needs_native
def test_arrays_as_planned_sees_every_change_python_can_make():
    param, other = np.zeros((3, 4), np.float32), np.zeros(12, np.float32)
    state = {"step": np.zeros((), np.float32), "exp_avg": np.zeros((3, 4), np.float32)}
    tables = _plan_tables([state], [param, state["step"], state["exp_avg"]])
    assert plan_checks.arrays_as_planned([np.ones((3, 4), np.float32)], *tables)
    grad = np.ones((3, 4), np.float32)
    for bad_grad in (grad.T.copy(), grad.astype(np.float64), np.asfortranarray(grad), other, [1.0],
                     state["exp_avg"], param[::-1]):
        assert not plan_checks.arrays_as_planned([bad_grad], *tables)
    assert plan_checks.arrays_as_planned([grad], *tables)

    def spoiled(spoil):
        held = {"step": state["step"], "exp_avg": state["exp_avg"].copy()}
        tables = _plan_tables([held], [param, held["step"], held["exp_avg"]])
        spoil(held)
        return not plan_checks.arrays_as_planned([grad], *tables)

    assert spoiled(lambda held: dict.__setitem__(held, "exp_avg", held["exp_avg"].copy()))
    assert spoiled(lambda held: held.pop("exp_avg"))
    assert spoiled(lambda held: held.__setitem__("extra", 1))
    assert spoiled(lambda held: setattr(held["exp_avg"].flags, "writeable", False))
    assert spoiled(lambda held: setattr(held["exp_avg"], "shape", (4, 3)))
    assert spoiled(lambda held: setattr(held["exp_avg"], "dtype", np.int32))
    assert spoiled(lambda held: held["exp_avg"].resize((2, 4), refcheck=False))
    with pytest.raises(TypeError, match="tables of a plan"):
        plan_checks.arrays_as_planned([grad], *tables[:3], tables[3].astype(np.int32), *tables[4:])
    with pytest.raises(TypeError, match="tables of a plan"):
        plan_checks.arrays_as_planned([grad], *tables[:-1], np.zeros(0, np.int64))


@needs_native
def test_plan_tables_takes_what_arrays_as_planned_compares():
    states = [{"step": np.zeros(()), "exp_avg": np.zeros((3, 4), np.float32), "note": "kept"}, {}]
    arrays = [np.zeros(5), states[0]["step"], states[0]["exp_avg"], np.zeros(0, np.float32), np.zeros((2, 1), np.int8)]
    items, held, *tables = plan_checks.plan_tables(states, arrays)
    expected = _plan_tables(states, arrays)
    np.testing.assert_array_equal(items, expected[1], strict=True)
    assert held == [part for state in states for item in state.items() for part in item]
    for found, wanted in zip(tables, expected[3:6]):
        np.testing.assert_array_equal(found, wanted, strict=True)
    with pytest.raises(TypeError, match=r"arrays\[1\] must be a NumPy array, got list"):
        plan_checks.plan_tables([], [arrays[0], [1.0]])
    with pytest.raises(TypeError, match=r"states\[0\] must be a dict, got list"):
        plan_checks.plan_tables([[]], [])
