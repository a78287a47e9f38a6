"""The NumPy optimizers' cached step (adamkit.numpy._cached_plan) is used on steady steps, and whatever
a user changes between steps sends the step back to the full path: the results always equal
those of an optimizer that never uses a plan, bit for bit, and bad input still raises before
anything changes. That holds with compact state too (state_dtype="int8" or "bf16"), which
group 1's larger arrays take, beside the float32 state of the others."""

import numpy as np
import pytest

import adamkit.numpy
from adamkit.kernels import native
from adamkit.numpy import _cached_plan
from adamkit.numpy._cached_plan import StepPlan

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")

SHAPES = [(1,), (7,), (17, 3), (4097,), (70, 80)]
STEPS = 6


def _params():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def _grads(step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


NAMES = ["Adam", "SGD", "Adam-int8", "Adam-bf16", "Adam-float64"]


def _make(params, name):
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.05}]
    if name.startswith("Adam"):
        state_dtype = {"int8": "int8", "bf16": "bf16"}.get(name.partition("-")[2])
        return adamkit.numpy.Adam(
            groups, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, maximize=True, state_dtype=state_dtype
        )
    return adamkit.numpy.SGD(groups, lr=0.01, momentum=0.9, nesterov=True)


def _nothing(optimizer, params, grads, step):
    pass


def _drop_a_grad(optimizer, params, grads, step):
    if step == 3:
        grads[1] = None


def _replace_a_state_array(optimizer, params, grads, step):
    if step == 3:
        state = optimizer.state[3]
        key = next(k for k in state if k != "step")
        state[key] = state[key].copy()


def _replace_a_state_array_by_a_strided_one(optimizer, params, grads, step):
    if step == 3:
        state = optimizer.state[4]
        key = next(k for k in state if k != "step")
        spread = np.zeros(state[key].shape + (2,), state[key].dtype)
        spread[..., 0] = state[key]
        dict.__setitem__(state, key, spread[..., 0])


def _replace_a_step_counter(optimizer, params, grads, step):
    if step == 3 and "step" in optimizer.state[2]:
        optimizer.state[2]["step"] = np.array(10.0, dtype=np.float32)


def _toggle_amsgrad(optimizer, params, grads, step):
    if step == 3 and "amsgrad" in optimizer.param_groups[1]:
        optimizer.param_groups[1]["amsgrad"] = False


def _reload_state(optimizer, params, grads, step):
    if step == 3:
        optimizer.load_state_dict(optimizer.state_dict())


def _non_contiguous_grad(optimizer, params, grads, step):
    if step == 3:
        grads[2] = np.asfortranarray(grads[2])


def _add_a_group(optimizer, params, grads, step):
    if step == 3:
        extra = np.linspace(-1, 1, 5, dtype=np.float32)
        optimizer.add_param_group({"params": [extra]})
        params.append(extra)
    if step >= 3:
        grads.append(np.linspace(1, 2, 5, dtype=np.float32))


def _change_lr(optimizer, params, grads, step):
    for group in optimizer.param_groups:
        group["lr"] *= 0.5


CHANGES = [
    _nothing,
    _drop_a_grad,
    _replace_a_state_array,
    _replace_a_state_array_by_a_strided_one,
    _replace_a_step_counter,
    _toggle_amsgrad,
    _reload_state,
    _non_contiguous_grad,
    _add_a_group,
    _change_lr,
]


def _run(change, name):
    dtype = np.float64 if name.endswith("float64") else np.float32
    params = [param.astype(dtype) for param in _params()]
    optimizer = _make(params, name)
    for step in range(STEPS):
        grads = [grad.astype(dtype) for grad in _grads(step)]
        change(optimizer, params, grads, step)
        optimizer.step(grads)
    return params, optimizer


@pytest.fixture
def planned_steps(monkeypatch):
    calls = []
    original = StepPlan.step

    def counting(self, optimizer, grads):
        done = original(self, optimizer, grads)
        calls.append(done)
        return done

    monkeypatch.setattr(StepPlan, "step", counting)
    return calls


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_planned_steps_equal_unplanned_steps_whatever_changes(change, name, planned_steps, monkeypatch):
    planned, planned_optimizer = _run(change, name)
    assert any(planned_steps), "no step went through a plan"
    monkeypatch.setattr(_cached_plan.StepPlan, "build", classmethod(lambda cls, optimizer, grads: None))
    unplanned, unplanned_optimizer = _run(change, name)
    for a, b in zip(planned, unplanned, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(planned_optimizer.state, unplanned_optimizer.state, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _stepped_optimizer(name):
    params = _params()
    optimizer = _make(params, name)
    for step in range(3):
        optimizer.step(_grads(step))
    return params, optimizer


def _snapshot(params, optimizer):
    return [p.copy() for p in params], [{k: np.copy(v) for k, v in s.items()} for s in optimizer.state]


def _assert_unchanged(params, optimizer, before):
    for a, b in zip(params, before[0]):
        np.testing.assert_array_equal(a, b)
    for state, saved in zip(optimizer.state, before[1]):
        for key, value in saved.items():
            np.testing.assert_array_equal(state[key], value, err_msg=key)


@pytest.mark.parametrize(
    ("spoil", "error", "words"),
    [
        (lambda params, grads, groups: grads.__setitem__(3, np.zeros(5, np.float32)), ValueError, "(5,)"),
        (lambda params, grads, groups: grads.__setitem__(3, grads[3].astype(np.float64)), ValueError, "float64"),
        (lambda params, grads, groups: grads.__setitem__(3, params[3]), ValueError, "shares memory"),
        (lambda params, grads, groups: groups[1].__setitem__("lr", -1.0), ValueError, "lr"),
        (lambda params, grads, groups: params[3].setflags(write=False), ValueError, "read-only"),
    ],
    ids=["shape", "dtype", "aliased", "bad-lr", "read-only"],
)
@pytest.mark.parametrize("name", ["Adam", "Adam-int8", "Adam-bf16"])
def test_bad_input_after_planned_steps_raises_and_changes_nothing(spoil, error, words, name):
    params, optimizer = _stepped_optimizer(name)
    grads = _grads(3)
    spoil(params, grads, optimizer.param_groups)
    before = _snapshot(params, optimizer)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        optimizer.step(grads)
    _assert_unchanged(params, optimizer, before)
