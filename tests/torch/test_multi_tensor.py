"""The multi-tensor device path (:mod:`adamkit.torch._multi_tensor`): each rule of
:mod:`adamkit.rules` runs once per bucket of tensors, every operation a ``torch._foreach_*``
operation over the bucket, so the number of torch operations per step does not grow with the
number of tensors.

There is no GPU here: the tests call the module directly on CPU tensors, for every rule and
hyperparameter combination of the case table, and route CPU tensors through the optimizers'
device path with the test-only switch. The path is compared bit for bit with the rule applied
to each tensor with torch operations (:func:`adamkit.kernels.reference.update` on tensors, the
device path before it was multi-tensor), with the rules on NumPy to the tolerance of the
torch-ops tests (torch's vectorised square root is not correctly rounded in float64), and, for
bfloat16 parameters with float32 state or Kahan summation, with the C kernels.
"""

import math
from collections import Counter

import pytest
import torch

import adamkit.torch
from adamkit import specs
from adamkit.kernels import native, reference
from adamkit.nonfinite import NonFiniteGradientWarning
from adamkit.torch import _backend, _finite, _torch_step
from adamkit.torch import _multi_tensor as multi_tensor
from adamkit.torch._kahan import KEY
from tests.cases import NATIVE_CASES as CASES
from tests.kernels.trajectories import tensor_count
from tests.torch._compare import TOLERANCE, Agreement, assert_bitwise_equal

SHAPES = ((1,), (7,), (17,), (4097,), (3, 5), (0,))
NONEMPTY = SHAPES[:-1]
STEPS = 4


def _spec_and_groups(case, **extra):
    """The case's spec and the rule arguments of its two parameter groups."""
    optimizer_class = getattr(adamkit.torch, case.optimizer)
    optimizer = optimizer_class([torch.zeros(1)], **case.hyper, **extra)
    optimizer.add_param_group({"params": [torch.zeros(1)], **case.second_group})
    spec = optimizer_class.spec
    return spec, [(spec.rule_arguments(group), group) for group in optimizer.param_groups]


RULE_CASES = [
    *((case, {}) for case in CASES),
    *((case, {"eps_hat": True}) for case in CASES if case.optimizer == "Adam"),
    # cautious=True: its per-tensor rescale is one stacked computation (TensorList.kept_scales).
    *(
        (case, {"cautious": True})
        for case in CASES
        if "cautious" in specs.BY_NAME[case.optimizer].defaults and "weight_decay" in case.hyper
    ),
]
# The rules made of elementwise operations only. LAMB's norms are reductions: on lists they are
# torch's (TensorList.squared_norms), on NumPy the rule's fixed order, so LAMB is checked against
# the rule on NumPy to a tolerance (test_each_rule_on_lists_agrees_with_the_rule_on_numpy).
ELEMENTWISE_RULE_CASES = [(case, extra) for case, extra in RULE_CASES if case.optimizer != "LAMB"]


def _tensors(dtype, seed, shapes=SHAPES, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype) for shape in shapes]


def _initial_state(spec, group, param):
    return {
        slot.key: torch.full_like(param, slot.initial_value(group))
        for slot in spec.active_slots(group)
        if slot.fill is not None
    }


def _copy(tensors):
    return [tensor.clone() for tensor in tensors]


def _copy_states(states):
    return [{key: value.clone() for key, value in state.items()} for state in states]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize(("case", "extra"), ELEMENTWISE_RULE_CASES, ids=lambda v: v.id if hasattr(v, "id") else str(v))
def test_each_rule_on_lists_equals_the_rule_per_tensor_bit_for_bit(case, extra, dtype):
    spec, groups = _spec_and_groups(case, **extra)
    for hyperparameters, group in groups:
        params = _tensors(dtype, seed=0)
        states = [_initial_state(spec, group, param) for param in params]
        expected_params, expected_states = _copy(params), _copy_states(states)
        for step in range(1, STEPS + 1):
            grads = _tensors(dtype, seed=step, scale=10.0 ** (step - 2))
            grads[2][3] = math.inf if step == 3 else grads[2][3]  # non-finite values propagate alike
            # Two step counts in one call: the later tensors joined one step later.
            steps = [tensor_count(spec, hyperparameters, step + (index >= 3)) for index in range(len(params))]
            multi_tensor.update(spec, hyperparameters, params, grads, states, steps, [None] * len(params))
            reference.update(spec, hyperparameters, expected_params, grads, expected_states, steps)
            for index, (got, want) in enumerate(zip(params, expected_params)):
                assert_bitwise_equal(got, want, f"step {step}: param {index}")
                assert states[index].keys() == expected_states[index].keys()
                for key, value in expected_states[index].items():
                    assert_bitwise_equal(states[index][key], value, f"step {step}: state[{index}][{key!r}]")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("case", "extra"), RULE_CASES, ids=lambda v: v.id if hasattr(v, "id") else str(v))
def test_each_rule_on_lists_agrees_with_the_rule_on_numpy(case, extra, dtype):
    spec, groups = _spec_and_groups(case, **extra)
    agreement = Agreement(TOLERANCE[dtype])
    for group_index, (hyperparameters, group) in enumerate(groups):
        params = _tensors(dtype, seed=0, shapes=NONEMPTY)
        states = [_initial_state(spec, group, param) for param in params]
        arrays = [param.numpy().copy() for param in params]
        array_states = [{key: value.numpy().copy() for key, value in state.items()} for state in states]
        for step in range(1, STEPS + 1):
            grads = _tensors(dtype, seed=step, shapes=NONEMPTY)
            steps = [tensor_count(spec, hyperparameters, step)] * len(params)
            multi_tensor.update(spec, hyperparameters, params, grads, states, steps, [None] * len(params))
            reference.update(spec, hyperparameters, arrays, [g.numpy() for g in grads], array_states, steps)
            for index, (got, want) in enumerate(zip(params, arrays)):
                agreement.check(f"group {group_index} param {index}", got, torch.from_numpy(want))
                for key, value in array_states[index].items():
                    agreement.check(
                        f"group {group_index} state[{index}][{key!r}]", states[index][key], torch.from_numpy(value)
                    )


def _float32_reference(spec, hyperparameters, params, grads, states, steps, compensations, state_dtype):
    """What the kernels compute for bfloat16 parameters, tensor by tensor: the rule in float32
    on float32 copies, each stored value rounded once (a created slot to ``state_dtype``), the
    parameter with Kahan summation when it has a buffer."""
    for index, (param, grad, state, step) in enumerate(zip(params, grads, states, steps)):
        wide_param = [param.float()]
        wide_state = [{key: value.float() for key, value in state.items()}]
        reference.update(spec, hyperparameters, wide_param, [grad.float()], wide_state, [step])
        compensation = compensations[index]
        if compensation is None:
            param.copy_(wide_param[0])
        else:
            total = wide_param[0] + compensation.float()
            param.copy_(total)
            compensation.copy_(total - param.float())
        for key, value in wide_state[0].items():
            if key in state:
                state[key].copy_(value)
            else:
                state[key] = value.to(state_dtype)


@pytest.mark.parametrize("float32_state", [False, True])
@pytest.mark.parametrize(("case", "extra"), RULE_CASES, ids=lambda v: v.id if hasattr(v, "id") else str(v))
def test_bfloat16_with_kahan_or_float32_state_is_the_float32_rule_rounded_once(case, extra, float32_state):
    spec, groups = _spec_and_groups(case, **extra)
    hyperparameters, group = groups[0]
    state_dtype = torch.float32 if float32_state else torch.bfloat16
    params = _tensors(torch.bfloat16, seed=0)
    states = [
        {key: value.to(state_dtype) for key, value in _initial_state(spec, group, param).items()} for param in params
    ]
    # Kahan summation for all but the first two (plain rounding, with float32 state only).
    compensations = [torch.zeros_like(param) for param in params]
    if float32_state:
        compensations[:2] = [None, None]
    expected = _copy(params), _copy_states(states), [None if c is None else c.clone() for c in compensations]
    for step in range(1, STEPS + 1):
        grads = _tensors(torch.bfloat16, seed=step, scale=1e-3)  # small updates: the compensation matters
        steps = [tensor_count(spec, hyperparameters, step)] * len(params)
        multi_tensor.update(
            spec, hyperparameters, params, grads, states, steps, compensations, float32_state=float32_state
        )
        _float32_reference(spec, hyperparameters, expected[0], grads, expected[1], steps, expected[2], state_dtype)
        for index, (got, want) in enumerate(zip(params, expected[0])):
            assert_bitwise_equal(got, want, f"step {step}: param {index}")
            if compensations[index] is not None:
                assert_bitwise_equal(compensations[index], expected[2][index], f"step {step}: compensation {index}")
            for key, value in expected[1][index].items():
                assert states[index][key].dtype is state_dtype, key
                assert_bitwise_equal(states[index][key], value, f"step {step}: state[{index}][{key!r}]")
    assert any(c is not None and c.any() for c in compensations), "the compensation never held anything"


@pytest.fixture
def device_path(monkeypatch):
    """Route CPU tensors through the device path, and record the calls of the rule-on-lists."""
    calls = []
    original = multi_tensor.update

    def recording(spec, hyperparameters, params, *args, **kwargs):
        calls.append(len(params))
        return original(spec, hyperparameters, params, *args, **kwargs)

    monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    monkeypatch.setattr(multi_tensor, "update", recording)
    return calls


def _train(name, dtype, options, steps=6, grads=None):
    """Parameters of the shapes of SHAPES in two groups, stepped by ``name`` with ``options``."""
    params = [torch.nn.Parameter(t) for t in _tensors(dtype, seed=0, shapes=NONEMPTY)]
    optimizer = getattr(adamkit.torch, name)([{"params": params[:3]}, {"params": params[3:], "lr": 3e-3}], **options)
    for step in range(1, steps + 1):
        for index, (param, grad) in enumerate(zip(params, _tensors(dtype, seed=step, shapes=NONEMPTY, scale=1e-2))):
            param.grad = grad if grads is None else grads(step, index, grad)
        optimizer.step()
    return params, optimizer


ADAMKIT_OPTIONS = [
    ("Adam", dict(lr=1e-2, eps_hat=True, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, betas=(0.8, 0.99), nonfinite_grads="skip", eps_hat=True)),
    ("Adam", dict(lr=1e-2, state_dtype="fp32", kahan_summation=False, maximize=True)),
    ("AdamW", dict(lr=1e-2, state_dtype="fp32", amsgrad=True)),
    ("AdamW", dict(lr=1e-2, eps_hat=True, kahan_summation=True)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, kahan_summation=True)),
    ("SGD", dict(lr=1e-2, momentum=0.9, dampening=0.1, state_dtype="fp32")),
    ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.5, state_dtype="fp32")),
    ("Adagrad", dict(lr=1e-1, lr_decay=0.01, kahan_summation=True)),
    ("Adadelta", dict(rho=0.8, weight_decay=0.1, state_dtype="fp32")),
    ("Adamax", dict(lr=1e-2, weight_decay=0.1, kahan_summation=True)),
    # torch.optim has no AdaBelief: off the CPU its plain configurations take this path too.
    ("AdaBelief", dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True, rectify=True)),
    ("AdaBelief", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=False, state_dtype="fp32")),
    ("ADOPT", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("ADOPT", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, kahan_summation=True)),
    ("Lion", dict(lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)),
    ("Lion", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=False, maximize=True, kahan_summation=True)),
    ("Adam", dict(lr=1e-2, cautious=True, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, cautious=True, kahan_summation=True)),
    ("Lion", dict(lr=1e-2, cautious=True, weight_decay=0.1, maximize=True)),
    ("AdEMAMix", dict(lr=1e-2, cautious=True, weight_decay=0.1, t_alpha_beta3=3.0)),
]


@pytest.mark.skipif(not native.available(), reason="the C kernels were not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(("name", "options"), ADAMKIT_OPTIONS, ids=lambda v: str(v))
def test_adamkit_options_on_the_device_path_agree_with_the_kernels(name, options, dtype, device_path):
    got_params, got_optimizer = _train(name, dtype, options)
    assert device_path, "the device path was not taken"
    device_path.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "on_kernel_device", lambda tensor: True)
        want_params, want_optimizer = _train(name, dtype, options)
    assert not device_path
    # bfloat16: the float32 arithmetic of both, rounded once; the last bit of a float32 square
    # root may differ, and rounding can carry it to one bfloat16 ulp (2**-8 relative).
    rtol = 2**-7 if dtype is torch.bfloat16 else TOLERANCE[dtype]
    agreement = Agreement(rtol)
    for index, (got, want) in enumerate(zip(got_params, want_params)):
        agreement.check(f"param {index}", got.float(), want.float())
        got_state, want_state = got_optimizer.state[got], want_optimizer.state[want]
        assert got_state.keys() == want_state.keys()
        for key, value in want_state.items():
            assert got_state[key].dtype == value.dtype, key
            if key != KEY:  # the compensation is the rounding error itself
                agreement.check(f"state[{index}][{key!r}]", got_state[key].float(), value.float())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_skip_on_the_device_path_names_the_parameter_and_changes_nothing(bad, device_path):
    params, optimizer = _train("Adam", torch.float32, dict(lr=1e-2, nonfinite_grads="skip"), steps=3)
    before = (
        [p.detach().clone() for p in params],
        [{k: v.clone() for k, v in optimizer.state[p].items()} for p in params],
    )
    for param in params:
        param.grad = torch.full_like(param, 3e38)  # huge but finite: not a reason to skip
    params[4].grad[2, 1] = bad  # the second parameter of the second group
    with pytest.warns(NonFiniteGradientWarning, match=r"param_groups\[1\]\['params'\]\[1\]"):
        optimizer.step()
    assert optimizer.skipped_steps == 1
    for param, value, state in zip(params, *before):
        assert_bitwise_equal(param.detach(), value)
        for key, tensor in state.items():
            assert_bitwise_equal(optimizer.state[param][key], tensor, key)
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer.step()
    assert optimizer.skipped_steps == 1
    assert not any(torch.equal(param.detach(), value) for param, value in zip(params, before[0]))


def test_first_nonfinite_finds_nan_and_infinities_and_not_huge_finite_values():
    huge = [
        torch.tensor([3e38, -3.4e38]),
        torch.tensor([65504.0, -65504.0], dtype=torch.float16),
        torch.tensor([1.7e308], dtype=torch.float64),
        torch.tensor([3e38 + 3e38j]),  # |z| overflows float32, its parts do not
        torch.tensor([3.3e38], dtype=torch.bfloat16),
        torch.empty(0),
        torch.zeros(4097, dtype=torch.float64),
    ]
    assert _finite.first_nonfinite(huge) is None
    assert _finite.first_nonfinite([]) is None
    for bad in (math.nan, math.inf, -math.inf):
        for position in (0, 3, len(huge) - 1):
            tensors = [t.clone() for t in huge]
            if tensors[position].is_complex():
                tensors[position][0] = complex(1.0, bad)
            else:
                tensors[position][-1] = bad
            later = [t.clone() for t in tensors]
            later[-1][0] = bad
            assert _finite.first_nonfinite(tensors) == position, (bad, position)
            assert _finite.first_nonfinite(later) == position, (bad, position)


def _top_level_operations(run):
    """The torch operations ``run()`` calls, as the profiler records them: the ``aten::`` events
    that no other ``aten::`` event encloses (a ``_foreach_`` operation without a fused
    implementation, as on the CPU, calls one operation per tensor inside itself)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        run()
    names = []
    for event in profile.events():
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if event.name.startswith("aten::") and parent is None:
            names.append(event.name)
    return sorted(names)


PROFILED = [
    ("Adam", torch.float32, dict(lr=1e-2, eps_hat=True, weight_decay=0.1)),
    ("Adam", torch.float32, dict(lr=1e-2, amsgrad=True, maximize=True)),
    ("AdamW", torch.float32, dict(lr=1e-2, nonfinite_grads="skip")),
    ("AdamW", torch.bfloat16, dict(lr=1e-2, kahan_summation=True)),
    ("Adam", torch.bfloat16, dict(lr=1e-2, state_dtype="fp32", kahan_summation=False)),
    ("SGD", torch.float32, dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", torch.bfloat16, dict(lr=1e-2, momentum=0.9, kahan_summation=True, state_dtype="fp32")),
    ("Adamax", torch.float64, dict(lr=1e-2, weight_decay=0.1)),
    ("Adadelta", torch.float32, dict(rho=0.8, nonfinite_grads="skip")),
    ("Adagrad", torch.float32, dict(lr=0.1, lr_decay=0.01)),
    ("RMSprop", torch.float32, dict(lr=1e-2, centered=True, momentum=0.9)),
    ("Adam", torch.complex64, dict(lr=1e-2)),
    (
        "AdaBelief",
        torch.float32,
        dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=False, amsgrad=True, maximize=True),
    ),
    ("ADOPT", torch.float32, dict(lr=1e-2, weight_decay=0.1)),
    ("Lion", torch.float32, dict(lr=1e-2, weight_decay=0.1)),
    ("Lion", torch.bfloat16, dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=False, kahan_summation=True)),
    ("Adam", torch.float32, dict(lr=1e-2, cautious=True, weight_decay=0.1)),
    ("Lion", torch.float32, dict(lr=1e-2, cautious=True)),
    ("AdEMAMix", torch.bfloat16, dict(lr=1e-2, cautious=True, kahan_summation=True)),
]


@pytest.mark.parametrize(("name", "dtype", "options"), PROFILED, ids=lambda v: str(v))
def test_the_operations_of_a_step_do_not_grow_with_the_number_of_tensors(
    name, dtype, options, device_path, monkeypatch
):
    # Plain configurations of rules torch has take torch's implementation on other devices
    # (tests/torch/test_torch_flags.py); here adamkit's path steps them, as it steps every
    # configuration of a rule torch lacks.
    monkeypatch.setattr(_torch_step, "serves_device", lambda optimizer, group, params: False)
    counts, entries = _operations_for_10_and_100_tensors(name, dtype, options)
    assert device_path, "the device path was not taken"
    assert any("_foreach_" in name for name in counts[10])
    grown = Counter(counts[100])
    grown.subtract(counts[10])
    # A complex tensor is stepped as its (real, imag) pairs: one view per tensor (parameter,
    # gradient, each slot), metadata only, which launches no kernel. Nothing else may grow.
    views = {"aten::view_as_real": 90 * (2 + entries - 1)} if dtype.is_complex else {}
    assert {name: n for name, n in grown.items() if n} == views


def _operations_for_10_and_100_tensors(name, dtype, options):
    """The top-level operations of ``name``'s second step, for 10 and for 100 tensors, and the
    number of state entries of a parameter."""
    counts = {}
    for count in (10, 100):
        generator = torch.Generator().manual_seed(count)
        params = [torch.nn.Parameter(torch.randn(3 + i % 7, generator=generator).to(dtype)) for i in range(count)]
        optimizer = getattr(adamkit.torch, name)(params, **options)
        for _ in range(2):  # the state is created on the first step; the second is profiled
            for param in params:
                param.grad = torch.randn(param.shape, generator=generator).to(dtype)
            counts[count] = _top_level_operations(optimizer.step)
    return counts, len(optimizer.state[params[0]])


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop"])
def test_torchs_foreach_implementation_on_the_device_path_is_flat_too(name, monkeypatch):
    monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    options = {"lr": 1e-2, "foreach": True, **({"momentum": 0.9} if name in ("SGD", "RMSprop") else {})}
    counts, _ = _operations_for_10_and_100_tensors(name, torch.float32, options)
    assert any("_foreach_" in operation for operation in counts[10])
    grown = Counter(counts[100])
    grown.subtract(counts[10])
    # torch's foreach step reads each parameter's step count (a CPU tensor unless capturable)
    # with .item() to compute its bias corrections: host reads, not kernels on the device.
    assert {operation for operation, n in grown.items() if n} <= {"aten::item"}


def _sparse_run(name, dtype, options, on_device):
    """Two embedding tables and a dense parameter, stepped with sparse gradients (repeated rows,
    an empty one) by ``name``, on the device path or on the CPU's."""
    generator = torch.Generator().manual_seed(5)
    tables = [torch.nn.Parameter(torch.randn(rows, 3, generator=generator, dtype=dtype)) for rows in (40, 9)]
    dense = torch.nn.Parameter(torch.randn(17, generator=generator, dtype=dtype))
    optimizer = getattr(adamkit.torch, name)([{"params": tables}, {"params": [dense], "lr": 3e-3}], **options)
    start = [table.detach().clone() for table in tables]
    touched = [set(), set()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "on_kernel_device", lambda tensor: not on_device)
        for step in range(4):
            for index, table in enumerate(tables):
                rows = torch.tensor([[3, 7, 3, 1 + step]] if index == 0 else [[]], dtype=torch.int64).reshape(1, -1)
                touched[index].update(rows[0].tolist())
                values = torch.randn(rows.shape[1], 3, generator=generator, dtype=dtype)
                table.grad = torch.sparse_coo_tensor(rows, values, table.shape)
            dense.grad = torch.randn(17, generator=generator, dtype=dtype)
            optimizer.step()
    return tables + [dense], optimizer, start, touched


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, eps_hat=True)),
        ("AdamW", dict(lr=1e-2, maximize=True)),
        ("Adamax", dict(lr=1e-2, weight_decay=0.1)),
        ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
        ("Adadelta", dict(rho=0.8)),
        ("AdaBelief", dict(lr=1e-2, weight_decay=0.1, rectify=True)),
        ("ADOPT", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
        ("Lion", dict(lr=1e-2, weight_decay=0.1)),
    ],
    ids=lambda v: str(v),
)
def test_lazy_sparse_steps_on_the_device_path_step_only_the_touched_rows(name, options, dtype, device_path):
    got, got_optimizer, start, touched = _sparse_run(name, dtype, options, on_device=True)
    assert device_path, "the device path was not taken"
    want, want_optimizer, _, _ = _sparse_run(name, dtype, options, on_device=False)
    agreement = Agreement(TOLERANCE[dtype])
    for index, (param, reference_param) in enumerate(zip(got, want)):
        agreement.check(f"param {index}", param.detach(), reference_param.detach())
        for key, value in want_optimizer.state[reference_param].items():
            agreement.check(f"state[{index}][{key!r}]", got_optimizer.state[param][key], value)
    for table, before, rows in zip(got, start, touched):
        untouched = [row for row in range(table.shape[0]) if row not in rows]
        assert_bitwise_equal(table.detach()[untouched], before[untouched], "untouched rows")
    assert touched[0] and not touched[1]
    # Row 1 is touched at the first step only, which for ADOPT only initialises its moment.
    moved = sorted(touched[0] - {1}) if name == "ADOPT" else sorted(touched[0])
    assert (got[0].detach()[moved] != start[0][moved]).all()
