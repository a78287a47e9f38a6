"""A NumPy optimizer's cached step checks a group's hyperparameters again only when the group
changed (adamkit.numpy._hyperparameters). Whatever a user sets between steps takes effect as it
does on an optimizer that never caches its step; a bad value raises the error it raises there,
before anything changes; and nothing that can change unseen (an array or a list changed in
place, an object whose methods lie, a dict subclass) is trusted."""

import contextlib
import math

import numpy as np
import pytest

import adamkit.numpy
from adamkit.kernels import native
from adamkit.numpy import _hyperparameters
from adamkit.numpy._hyperparameters import GroupArguments
from adamkit.numpy._cached_plan import StepPlan
from adamkit.specs import ADAM

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")

SIZES = (7, 3)


def _params():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(size) for size in SIZES]


def _grads(step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(size) for size in SIZES]


def _optimizer(params):
    groups = [{"params": params[:1]}, {"params": params[1:], "lr": 0.02}]
    return adamkit.numpy.Adam(groups, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)


@contextlib.contextmanager
def _unplanned():
    """Optimizers built inside never cache their step."""
    original = StepPlan.build
    StepPlan.build = classmethod(lambda cls, optimizer, grads: None)
    try:
        yield
    finally:
        StepPlan.build = original


@pytest.fixture
def planned(monkeypatch):
    """Whether each step went through the plan."""
    calls = []
    original = StepPlan.step

    def counting(self, optimizer, grads):
        calls.append(original(self, optimizer, grads))
        return calls[-1]

    monkeypatch.setattr(StepPlan, "step", counting)
    return calls


@pytest.fixture
def reads(monkeypatch):
    """How many times a group's hyperparameters were read, checked and converted."""
    calls = []
    original = _hyperparameters._checked

    def counting(spec, entries):
        calls.append(dict(entries))
        return original(spec, entries)

    monkeypatch.setattr(_hyperparameters, "_checked", counting)
    return calls


def _run(changes, steps=6):
    """The parameters and state after ``steps`` steps, ``changes[step](optimizer)`` before each."""
    params = _params()
    optimizer = _optimizer(params)
    for step in range(steps):
        if step in changes:
            changes[step](optimizer)
        optimizer.step(_grads(step))
    return params, optimizer


def _assert_same_run(changes, steps=6):
    planned_params, planned_optimizer = _run(changes, steps)
    with _unplanned():
        params, optimizer = _run(changes, steps)
    for a, b in zip(planned_params, params, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(planned_optimizer.state, optimizer.state, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    return planned_params, planned_optimizer


def _setter(name, value, group=1):
    def change(optimizer):
        optimizer.param_groups[group][name] = value() if callable(value) else value

    return change


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lr", 0.5),
        ("lr", 1),
        ("betas", (0.5, 0.9)),
        ("betas", (0, 0)),
        ("eps", 1e-3),
        ("weight_decay", 0.0),
        ("maximize", True),
        ("decoupled_weight_decay", True),
        ("amsgrad", True),
        ("lr", np.float64(0.5)),
        ("lr", lambda: np.array(0.5)),
        ("betas", lambda: (np.array(0.5), np.float32(0.9))),
    ],
    ids=lambda value: repr(value) if not callable(value) else "array",
)
def test_a_hyperparameter_set_between_planned_steps_takes_effect(name, value, planned):
    changed, optimizer = _assert_same_run({3: _setter(name, value)})
    # Every step but the first goes through the plan, but where the change adds a state slot.
    assert planned[-1] and (all(planned) or name == "amsgrad")
    if name == "amsgrad":  # its maximum equals exp_avg_sq while that grows, as it does here
        assert "max_exp_avg_sq" in optimizer.state[1] and "max_exp_avg_sq" not in optimizer.state[0]
    else:
        assert not np.array_equal(changed[1], _run({})[0][1])


def test_a_hyperparameter_set_at_every_step_takes_effect(planned):
    halve = {step: _setter("lr", lambda step=step: 0.1 / 2**step, group=0) for step in range(6)}
    _assert_same_run(halve)
    assert all(planned)


def test_a_steady_group_is_read_once_and_a_changed_one_again(reads, planned):
    params = _params()
    optimizer = _optimizer(params)
    for step in range(3):
        optimizer.step(_grads(step))
    assert all(planned)
    count = len(reads)
    optimizer.step(_grads(3))
    assert len(reads) == count  # the planned step read nothing again
    optimizer.param_groups[1]["lr"] = float("0.02")  # equal, but another object
    optimizer.step(_grads(4))
    assert len(reads) == count + 1 and reads[-1]["lr"] == 0.02
    optimizer.step(_grads(5))
    assert len(reads) == count + 1


BAD = [
    ("lr", -1.0, ValueError, "Invalid lr: -1.0"),
    ("lr", math.nan, ValueError, "Invalid lr: nan"),
    ("lr", "0.1", TypeError, "lr must be a real number, got '0.1'"),
    ("lr", lambda: np.array([0.1, 0.2]), ValueError, "lr must be a number or a 1-element tensor, got 2 elements"),
    ("eps", math.inf, ValueError, "Invalid eps: inf"),
    ("weight_decay", -0.5, ValueError, "Invalid weight_decay: -0.5"),
    ("betas", (0.9, 1.0), ValueError, "Invalid betas[1]: 1.0"),
    ("betas", (0.9,), ValueError, "Invalid betas: (0.9,)"),
    ("betas", 0.9, TypeError, "betas must be a pair of numbers, got 0.9"),
    ("amsgrad", "yes", TypeError, "amsgrad must be True or False, got 'yes'"),
    ("maximize", 1, TypeError, "maximize must be True or False, got 1"),
]


def _state_of(params, optimizer):
    return [param.copy() for param in params], [{k: np.copy(v) for k, v in s.items()} for s in optimizer.state]


def _assert_unchanged(params, optimizer, before):
    after = _state_of(params, optimizer)
    for a, b in zip(after[0], before[0], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(after[1], before[1], strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _error_of(step):
    with pytest.raises((TypeError, ValueError)) as raised:
        step()
    return raised.type, str(raised.value)


@pytest.mark.parametrize(("name", "value", "error", "words"), BAD, ids=lambda v: repr(v) if not callable(v) else "array")
def test_a_bad_value_set_between_planned_steps_raises_as_unplanned_and_changes_nothing(name, value, error, words):
    params, optimizer = _run({}, steps=3)
    assert optimizer._plan is not None
    _setter(name, value)(optimizer)
    before = _state_of(params, optimizer)
    raised = _error_of(lambda: optimizer.step(_grads(3)))
    assert raised[0] is error and raised[1].startswith(f"param_groups[1]: {words}")
    _assert_unchanged(params, optimizer, before)
    with _unplanned():
        _, reference = _run({}, steps=3)
        _setter(name, value)(reference)
        assert _error_of(lambda: reference.step(_grads(3))) == raised
    # Set right again, the optimizer steps on as if nothing had happened.
    _setter(name, 0.02 if name == "lr" else reference.defaults[name])(optimizer)
    optimizer.step(_grads(3))


def test_a_bad_value_set_after_its_group_was_trusted_is_refused(reads):
    params, optimizer = _run({}, steps=4)
    count = len(reads)
    optimizer.param_groups[0]["eps"] = -1e-8
    before = _state_of(params, optimizer)
    with pytest.raises(ValueError, match=r"param_groups\[0\]: Invalid eps: -1e-08"):
        optimizer.step(_grads(4))
    _assert_unchanged(params, optimizer, before)
    assert len(reads) > count


def _use_arrays(optimizer):
    optimizer.param_groups[1].update(lr=np.array(0.05), betas=(np.array(0.8), 0.99))


def _change_them_in_place(optimizer):
    group = optimizer.param_groups[1]
    group["lr"][...] = 0.3
    group["betas"][0][...] = 0.5


def test_an_array_changed_in_place_is_read_again(planned):
    changed, _ = _assert_same_run({1: _use_arrays, 4: _change_them_in_place})
    assert all(planned)
    unchanged, _ = _assert_same_run({1: _use_arrays})
    assert not np.array_equal(changed[1], unchanged[1])


@pytest.mark.parametrize(("value", "words"), [(-0.1, "Invalid lr: array(-0.1)"), (math.nan, "Invalid lr: array(nan)")])
def test_an_array_made_invalid_in_place_is_refused(value, words):
    lr = np.array(0.05)
    params = _params()
    optimizer = _optimizer(params)
    optimizer.param_groups[0]["lr"] = lr
    for step in range(3):
        optimizer.step(_grads(step))
    lr[...] = value
    before = _state_of(params, optimizer)
    with pytest.raises(ValueError, match=r"param_groups\[0\]: " + words.replace("(", r"\(").replace(")", r"\)")):
        optimizer.step(_grads(3))
    _assert_unchanged(params, optimizer, before)


class EqualToAnything(float):
    """A float that says it equals anything and hashes as the value it replaces."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __hash__(self):
        return hash(0.02)


class Shifty:
    """A number whose every method lies: it equals anything, and its value is whatever
    ``values`` gives next."""

    def __init__(self, *values):
        self.values = iter(values)

    def __eq__(self, other):
        return True

    def __hash__(self):
        return hash(0.02)

    def __float__(self):
        return next(self.values)


def test_an_object_with_a_lying_eq_cannot_pass_for_the_value_it_replaces():
    params, optimizer = _run({}, steps=3)
    optimizer.param_groups[1]["lr"] = EqualToAnything(-1.0)
    before = _state_of(params, optimizer)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: Invalid lr: -1.0"):
        optimizer.step(_grads(3))
    _assert_unchanged(params, optimizer, before)


def test_a_value_whose_float_changes_is_checked_as_the_rule_gets_it():
    params, optimizer = _run({}, steps=3)
    optimizer.param_groups[1]["lr"] = Shifty(0.02, -1.0, 0.02, -1.0)  # checked as 0.02, converted to -1.0
    before = _state_of(params, optimizer)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: Invalid lr: -1.0"):
        optimizer.step(_grads(3))
    _assert_unchanged(params, optimizer, before)


def test_a_lying_object_is_read_at_every_step(planned):
    lying = Shifty(*[0.02] * 6 + [0.3] * 4)  # each step converts it twice: to check it, and for the rule

    def use_it(optimizer):
        optimizer.param_groups[1]["lr"] = lying

    params, _ = _run({1: use_it}, steps=6)
    with _unplanned():
        reference = _run({1: _setter("lr", 0.02), 4: _setter("lr", 0.3)}, steps=6)[0]
    assert all(planned)
    np.testing.assert_array_equal(params[1], reference[1])


class ShiftyGroup(dict):
    """A parameter group whose ``lr`` is whatever ``lrs`` gives next."""

    def __init__(self, group, lrs):
        super().__init__(group)
        self.lrs = iter(lrs)

    def __getitem__(self, key):
        return next(self.lrs) if key == "lr" else super().__getitem__(key)


def test_a_dict_subclass_group_is_read_at_every_step():
    params, optimizer = _run({}, steps=3)
    optimizer.param_groups[1] = ShiftyGroup(optimizer.param_groups[1], [0.02, 0.02, -1.0, -1.0])
    optimizer.step(_grads(3))
    optimizer.step(_grads(4))
    assert optimizer._plan is not None
    before = _state_of(params, optimizer)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: Invalid lr: -1.0"):
        optimizer.step(_grads(5))
    _assert_unchanged(params, optimizer, before)


def test_group_arguments_trust_only_the_same_plain_entries_under_the_same_keys():
    group = {"params": [], **ADAM.defaults, "lr": 0.1}
    arguments = GroupArguments(ADAM)
    first = arguments.read(group)
    assert first == ADAM.rule_arguments(group)
    assert arguments.read(group) is first
    group["lr"] = group["lr"]  # the very same float object: still trusted
    assert arguments.read(group) is first
    changes = [
        lambda g: g.__setitem__("lr", float("0.1")),  # equal, another object
        lambda g: g.__setitem__("initial_lr", 0.1),  # another key
        lambda g: g.update(dict.fromkeys(["lr"], g.pop("lr"))),  # the same keys in another order
        lambda g: g.__setitem__("betas", (0.9, np.float64(0.999))),  # a tuple holding a NumPy scalar
    ]
    for change in changes:
        before = arguments.read(group)
        change(group)
        after = arguments.read(group)
        assert after is not before and after == ADAM.rule_arguments(group)
    untrusted = arguments.read(group)
    assert arguments.read(group) is not untrusted  # a NumPy scalar inside a tuple is read each time
    group["betas"] = [0.9, 0.999]
    with pytest.raises(TypeError):
        arguments.read(group)
    group["betas"] = (0.9, 0.999)
    trusted = arguments.read(group)
    assert arguments.read(group) is trusted
    del group["eps"]
    with pytest.raises(KeyError, match="eps"):
        arguments.read(group)


def test_a_group_with_a_key_that_is_not_a_str_is_read_each_time():
    group = {"params": [], **ADAM.defaults, 3: "a note"}
    arguments = GroupArguments(ADAM)
    assert arguments.read(group) is not arguments.read(group)
