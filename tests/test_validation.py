"""Bad hyperparameters raise a precise error naming the argument and the value, and change nothing.

The constraints below are written from torch's documentation, not read from
``adamkit.specs``, so a spec that forgets a check fails here.
"""

import inspect
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adamkit import specs

torch = pytest.importorskip("torch")
import adamkit.torch  # noqa: E402

NAN, INF = math.nan, math.inf
NONNEGATIVE = ("lr", "eps", "weight_decay", "momentum", "dampening", "lr_decay", "initial_accumulator_value", "momentum_decay")
UNIT_CLOSED = ("rho", "alpha")
FLAGS = ("amsgrad", "maximize", "decoupled_weight_decay", "eps_hat", "nesterov", "centered", "rectify", "cautious")
PAIRS = ("betas",)
NONPOSITIVE = ("beta2_decay",)
AT_LEAST_ONE = ("d",)
# Adafactor's eps is a pair (eps1 or None, eps2), each a finite number >= 0.
EPS_PAIRS = ("eps",)

SPECS = {spec.name: spec for spec in specs.ALL}
CONSTRUCTORS = {name: getattr(adamkit.torch, name) for name in SPECS}

BAD_NONNEGATIVE = (-0.1, -1e-12, -INF, NAN, INF)
BAD_UNIT_CLOSED = (-0.1, 1.0000001, 1.5, -INF, INF, NAN)
NOT_A_NUMBER = (None, True, [0.1], 1j)
NOT_A_FLAG = ("yes", 1, 0, None)
# (betas, the entry the message must quote)
BAD_BETA_ENTRIES = (
    ((1.0, 0.999), 1.0),
    ((0.9, 1.0), 1.0),
    ((-0.1, 0.999), -0.1),
    ((NAN, 0.999), NAN),
    ((0.9, NAN), NAN),
    ((0.9, INF), INF),
    ((0.9, -INF), -INF),
)
BAD_BETA_LENGTHS = ((0.9,), (0.9, 0.99, 0.999), ())
BAD_NONPOSITIVE = (0.1, 1e-12, INF, NAN)
BAD_AT_LEAST_ONE = (0.0, 0.999, -INF, NAN)
# (eps, the entry the message must quote)
BAD_EPS_ENTRIES = (((-0.1, 1e-3), -0.1), ((None, -1e-12), -1e-12), ((NAN, 1e-3), NAN), ((None, INF), INF))

VALID_EDGES = {
    "lr": (0.0, 1e300, torch.tensor(0.01)),
    "eps": (0.0,),
    "weight_decay": (0.0,),
    "momentum": (0.0,),
    "dampening": (0.0,),
    "lr_decay": (0.0,),
    "initial_accumulator_value": (0.0,),
    "rho": (0.0, 1.0),
    "alpha": (0.0, 1.0),
    "betas": ((0.0, 0.0), (0.999999, 0.5)),
    "beta2_decay": (0.0, -1e300, -INF),
    "d": (1.0, INF),
}
VALID_EPS_PAIRS = ((0.0, 0.0), (None, 0.0), (1e300, 1e300))


# AdEMAMix's own kinds, checked by bad_cases' own rows: α any number >= 0 (not RMSprop's [0, 1]),
# t_alpha_beta3 None or a number of steps > 0, betas a triple.
# LAMB's trust_clip: None or a finite number > 0.
# Schedule-Free's warmup_steps: a whole number >= 0; its r and weight_lr_power: any finite number.
OWN = {("AdEMAMix", "alpha"), ("AdEMAMix", "betas"), ("AdEMAMix", "t_alpha_beta3"), ("LAMB", "trust_clip")} | {
    ("AdamWScheduleFree", key) for key in ("warmup_steps", "r", "weight_lr_power")
}
OWN_VALID_EDGES = {
    "alpha": (0.0, 100.0),
    "betas": ((0.0, 0.0, 0.0), (0.999999, 0.5, 0.9)),
    "t_alpha_beta3": (None, 1e-3, 1e9),
    "trust_clip": (None, 1e-12, 1e300),
    "warmup_steps": (0, 1, 10**6, 3.0),
    "r": (0.0, -2.0, 1e3),
    "weight_lr_power": (0.0, -1.0, 8.0),
}


def names_value(name, value):
    """A ``match`` pattern: the argument's name, then the value as written in the message."""
    return re.escape(name) + ".*" + re.escape(repr(value))


def hyperparameters(kinds, pairs=False):
    """``(spec name, hyperparameter)`` for every hyperparameter of ``kinds`` any spec has, of
    those whose default is a pair if ``pairs`` (Adafactor's ``eps``), else of the others; not
    those a spec checks in its own way (``OWN``)."""
    return [
        (name, key)
        for name, spec in SPECS.items()
        for key, default in spec.defaults.items()
        if key in kinds and isinstance(default, tuple) == pairs and (name, key) not in OWN
    ]


def constructor_hyperparameters(kinds):
    """Like :func:`hyperparameters`, limited to keywords the torch constructor accepts."""
    return [
        (name, key)
        for name, key in hyperparameters(kinds)
        if key in inspect.signature(CONSTRUCTORS[name]).parameters
    ]


def bad_cases():
    """``(spec name, keyword, bad value, exception type, match)`` for every hyperparameter."""
    cases = []
    for name, key in hyperparameters(NONNEGATIVE):
        cases += [(name, key, value, ValueError, names_value(key, value)) for value in BAD_NONNEGATIVE]
        cases += [(name, key, value, TypeError, names_value(key, value)) for value in NOT_A_NUMBER]
    for name, key in hyperparameters(UNIT_CLOSED):
        cases += [(name, key, value, ValueError, names_value(key, value)) for value in BAD_UNIT_CLOSED]
        cases += [(name, key, value, TypeError, names_value(key, value)) for value in NOT_A_NUMBER]
    for name, key in hyperparameters(FLAGS):
        cases += [(name, key, value, TypeError, names_value(key, value)) for value in NOT_A_FLAG]
    for name, key in hyperparameters(PAIRS, pairs=True):
        cases += [(name, key, pair, ValueError, names_value(key, entry)) for pair, entry in BAD_BETA_ENTRIES]
        cases += [(name, key, pair, ValueError, names_value(key, pair)) for pair in BAD_BETA_LENGTHS]
        cases += [(name, key, 0.9, TypeError, names_value(key, 0.9))]
    for name, key in hyperparameters(EPS_PAIRS, pairs=True):
        cases += [(name, key, pair, ValueError, names_value(key, entry)) for pair, entry in BAD_EPS_ENTRIES]
        cases += [(name, key, pair, ValueError, names_value(key, pair)) for pair in BAD_BETA_LENGTHS]
        cases += [(name, key, 0.9, TypeError, names_value(key, 0.9)), (name, key, (None, None), TypeError, "eps")]
    for kinds, bad in ((NONPOSITIVE, BAD_NONPOSITIVE), (AT_LEAST_ONE, BAD_AT_LEAST_ONE)):
        for name, key in hyperparameters(kinds):
            cases += [(name, key, value, ValueError, names_value(key, value)) for value in bad]
            cases += [(name, key, value, TypeError, names_value(key, value)) for value in NOT_A_NUMBER]
    name = "AdEMAMix"
    cases += [(name, "alpha", value, ValueError, names_value("alpha", value)) for value in BAD_NONNEGATIVE]
    cases += [(name, "t_alpha_beta3", value, ValueError, names_value("t_alpha_beta3", value)) for value in (*BAD_NONNEGATIVE, 0.0)]
    for key in ("alpha", "t_alpha_beta3"):
        cases += [(name, key, value, TypeError, names_value(key, value)) for value in NOT_A_NUMBER if value is not None]
    cases += [(name, "betas", (*pair, 0.9999), ValueError, names_value("betas", entry)) for pair, entry in BAD_BETA_ENTRIES]
    cases += [(name, "betas", (0.9, 0.999, value), ValueError, names_value("betas[2]", value)) for value in (1.0, -0.1, NAN)]
    cases += [(name, "betas", triple, ValueError, names_value("betas", triple)) for triple in ((0.9, 0.99), (0.9,) * 4, ())]
    cases += [("LAMB", "trust_clip", value, ValueError, names_value("trust_clip", value)) for value in (0.0, *BAD_NONNEGATIVE)]
    cases += [("LAMB", "trust_clip", value, TypeError, names_value("trust_clip", value)) for value in NOT_A_NUMBER[1:]]
    name = "AdamWScheduleFree"
    cases += [(name, "warmup_steps", value, ValueError, names_value("warmup_steps", value)) for value in (*BAD_NONNEGATIVE, 2.5)]
    for key in ("r", "weight_lr_power"):
        cases += [(name, key, value, ValueError, names_value(key, value)) for value in (NAN, INF, -INF)]
    for key in ("warmup_steps", "r", "weight_lr_power"):
        cases += [(name, key, value, TypeError, names_value(key, value)) for value in NOT_A_NUMBER]
    return cases


BAD_CASES = bad_cases()
CONSTRUCTOR_BAD_CASES = [
    case for case in BAD_CASES if case[1] in inspect.signature(CONSTRUCTORS[case[0]]).parameters
]


def one_per_kind(cases):
    """The first case of each (optimizer, keyword, exception): enough for the group paths."""
    kept = {}
    for case in cases:
        kept.setdefault((case[0], case[1], case[3]), case)
    return list(kept.values())


GROUP_BAD_CASES = one_per_kind(CONSTRUCTOR_BAD_CASES)
# Valid keywords that let each bad value be the only problem (nesterov=True needs momentum).
VALID_BASE = {"SGD": {"momentum": 0.9}}


def case_id(case):
    name, key, value, _, _ = case
    return f"{name}-{key}={value!r}"


def weights(count=2):
    return [torch.nn.Parameter(torch.randn(3, dtype=torch.float64)) for _ in range(count)]


def test_every_hyperparameter_has_a_known_constraint():
    """So that the tables here cover every spec; a new hyperparameter needs a row."""
    known = set(NONNEGATIVE + UNIT_CLOSED + FLAGS + PAIRS + NONPOSITIVE + AT_LEAST_ONE + EPS_PAIRS)
    for spec in specs.ALL:
        assert set(spec.defaults) <= known | {key for name, key in OWN if name == spec.name}, spec.name


# Through the specs.


@pytest.mark.parametrize("case", BAD_CASES, ids=case_id)
def test_spec_rejects_bad_hyperparameter(case):
    name, key, value, error, match = case
    with pytest.raises(error, match=match):
        SPECS[name].validate({**SPECS[name].defaults, key: value})


@pytest.mark.parametrize("name", SPECS)
def test_spec_accepts_its_defaults_and_valid_edges(name):
    spec = SPECS[name]
    spec.validate(spec.defaults)
    for key, default in spec.defaults.items():
        if key in EPS_PAIRS and isinstance(default, tuple):
            edges = VALID_EPS_PAIRS
        else:
            edges = (OWN_VALID_EDGES if (name, key) in OWN else VALID_EDGES).get(key, ())
        for value in edges:
            spec.validate({**spec.defaults, key: value})


# The largest negative float, written as a bound: hypothesis 6.170 rewrites a `lambda x: x < 0`
# filter into bounds that let 0.0 and -0.0 through.
negative = st.floats(max_value=-5e-324)
bad_nonnegative = negative | st.sampled_from([NAN, INF])
bad_unit_closed = negative | st.floats(min_value=1.0, exclude_min=True) | st.just(NAN)
bad_beta = negative | st.floats(min_value=1.0) | st.just(NAN)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(hyperparameters(NONNEGATIVE)), bad_nonnegative)
def test_spec_rejects_any_negative_or_nonfinite_value(where, value):
    name, key = where
    with pytest.raises(ValueError, match=names_value(key, value)):
        SPECS[name].validate({key: value})


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(hyperparameters(UNIT_CLOSED)), bad_unit_closed)
def test_spec_rejects_any_value_outside_the_unit_interval(where, value):
    name, key = where
    with pytest.raises(ValueError, match=names_value(key, value)):
        SPECS[name].validate({key: value})


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(hyperparameters(PAIRS, pairs=True)), st.integers(0, 1), bad_beta, st.floats(0.0, 0.999))
def test_spec_rejects_any_beta_outside_zero_one(where, index, bad, good):
    name, key = where
    pair = (bad, good) if index == 0 else (good, bad)
    with pytest.raises(ValueError, match=names_value(key, bad)):
        SPECS[name].validate({key: pair})


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(hyperparameters(FLAGS)), st.integers() | st.floats() | st.text() | st.none())
def test_spec_rejects_any_non_boolean_flag(where, value):
    name, key = where
    with pytest.raises(TypeError, match=names_value(key, value)):
        SPECS[name].validate({key: value})


@pytest.mark.parametrize("name", SPECS)
def test_spec_rejects_numeric_strings(name):
    """``float("0.1")`` parses, but torch raises on a string hyperparameter, and so must we."""
    for key in SPECS[name].defaults:
        if key in NONNEGATIVE + UNIT_CLOSED:
            with pytest.raises(TypeError, match=names_value(key, "0.1")):
                SPECS[name].validate({key: "0.1"})


def test_multi_element_tensor_lr_is_rejected():
    with pytest.raises(ValueError, match=r"lr.*2 elements"):
        specs.ADAM.validate({"lr": torch.tensor([0.1, 0.2])})


# Through the torch constructors.


@pytest.mark.parametrize("case", CONSTRUCTOR_BAD_CASES, ids=case_id)
def test_constructor_rejects_bad_hyperparameter(case):
    name, key, value, error, match = case
    with pytest.raises(error, match=match):
        CONSTRUCTORS[name](weights(), **{**VALID_BASE.get(name, {}), key: value})


@pytest.mark.parametrize("value", NOT_A_FLAG)
def test_sgd_rejects_non_boolean_nesterov_before_checking_momentum(value):
    """With the default momentum = 0, a truthy non-bool nesterov is still a TypeError about itself."""
    with pytest.raises(TypeError, match=names_value("nesterov", value)):
        adamkit.torch.SGD(weights(), nesterov=value)


@pytest.mark.parametrize("case", GROUP_BAD_CASES, ids=case_id)
def test_constructor_rejects_bad_hyperparameter_in_a_group(case):
    name, key, value, error, match = case
    first, second = weights()
    with pytest.raises(error, match=match):
        CONSTRUCTORS[name]([{"params": [first]}, {"params": [second], key: value}])


@pytest.mark.parametrize("case", GROUP_BAD_CASES, ids=case_id)
def test_add_param_group_rejects_bad_hyperparameter_and_changes_nothing(case):
    name, key, value, error, match = case
    first, second = weights()
    optimizer = CONSTRUCTORS[name]([first])
    groups_before = [dict(group) for group in optimizer.param_groups]
    with pytest.raises(error, match=match):
        optimizer.add_param_group({"params": [second], key: value})
    assert optimizer.param_groups == groups_before
    assert second not in optimizer.state


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(constructor_hyperparameters(("lr", "eps"))), bad_nonnegative)
def test_constructor_rejects_any_bad_lr_or_eps(where, value):
    name, key = where
    with pytest.raises(ValueError, match=names_value(key, value)):
        CONSTRUCTORS[name](weights(), **{key: value})


@pytest.mark.parametrize("name", CONSTRUCTORS)
@pytest.mark.parametrize("policy", ["ignore", "Skip", None, 0])
def test_unknown_nonfinite_policy_is_rejected(name, policy):
    with pytest.raises(ValueError, match=names_value("nonfinite_grads", policy)):
        CONSTRUCTORS[name](weights(), nonfinite_grads=policy)


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(ValueError, match=r"nesterov.*momentum=0"):
        adamkit.torch.SGD(weights(), momentum=0, nesterov=True)
    with pytest.raises(ValueError, match=r"nesterov.*dampening=0\.1"):
        adamkit.torch.SGD(weights(), momentum=0.9, dampening=0.1, nesterov=True)


# Parameter lists.


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_empty_parameter_list_is_rejected(name):
    with pytest.raises(ValueError, match="empty parameter list"):
        CONSTRUCTORS[name]([])


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_parameter_listed_twice_in_one_group_gets_torchs_warning(name):
    """torch warns and steps such a parameter twice (tests/torch/test_tampering.py checks the steps)."""
    weight, other = weights()
    torchs = [getattr(torch.optim, name)] if hasattr(torch.optim, name) else []  # else adamkit's alone
    for cls in (*torchs, CONSTRUCTORS[name]):
        with pytest.warns(UserWarning, match="duplicate parameters"):
            optimizer = cls([{"params": [other]}, {"params": [weight, weight]}])
        assert optimizer.param_groups[1]["params"] == [weight, weight]


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_parameter_listed_in_two_groups_is_rejected(name):
    weight, other = weights()
    with pytest.raises(ValueError, match="more than one parameter group"):
        CONSTRUCTORS[name]([{"params": [weight, other]}, {"params": [weight]}])


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_add_param_group_with_a_known_parameter_changes_nothing(name):
    weight, other = weights()
    optimizer = CONSTRUCTORS[name]([weight])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [other, weight], "lr": 0.5})
    assert len(optimizer.param_groups) == 1
    assert optimizer.param_groups[0]["params"] == [weight]


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_generator_of_params_in_a_group_is_kept(name):
    """torch accepts any iterable as a group's params; checking for repeats must not use it up."""
    first, second, third = weights(3)
    optimizer = CONSTRUCTORS[name]([{"params": (p for p in (first, second))}])
    assert optimizer.param_groups[0]["params"] == [first, second]
    optimizer.add_param_group({"params": iter([third])})
    assert optimizer.param_groups[1]["params"] == [third]
