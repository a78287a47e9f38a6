"""Checkpoints move between torch.optim and adamkit.torch in both directions without changing
the trajectory, and a state_dict that does not fit is refused without touching anything."""

import copy
import pickle

import pytest
import torch

import adamkit.torch
from adamkit.kernels import quantized
from adamkit.nonfinite import NonFiniteGradientWarning
from adamkit.specs import SCALAR_STATE_KEYS

from tests.cases import gradients, initial_params
from tests.torch._compare import (
    TOLERANCE,
    Agreement,
    assert_load_refused,
    both,
    make_params,
    set_grads,
)

# (optimizer, constructor hyperparameters, overrides of the second parameter group)
CHECKPOINT_CASES = (
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.1), dict(lr=3e-3)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99)), dict(weight_decay=0.3)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.2), dict(eps=1e-4)),
    ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.9, alpha=0.9), dict(lr=1e-3)),
    ("SGD", dict(lr=1e-2, momentum=0.9, dampening=0.1), dict(momentum=0.5)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.05), dict(rho=0.95)),
    ("Adamax", dict(lr=1e-2, weight_decay=0.05, betas=(0.7, 0.9)), dict(lr=1e-3)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.05, momentum_decay=0.05), dict(decoupled_weight_decay=True)),
    ("RAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True), dict(lr=3e-3, decoupled_weight_decay=False)),
)
CASE_IDS = [name for name, _, _ in CHECKPOINT_CASES]
TOTAL_STEPS = 30
FIRST_SAVE, SECOND_SAVE = 10, 20


def _groups(params, second_group):
    return [{"params": [params[0], params[2]]}, {"params": [params[1], params[3]], **second_group}]


def _optimizer(cls, values, hyper, second_group):
    """A fresh optimizer over fresh parameters holding copies of ``values``."""
    params = make_params([v.detach().numpy() for v in values])
    return params, cls(_groups(params, second_group), **hyper)


def _train(params, optimizer, grads):
    for step_grads in grads:
        set_grads(params, step_grads)
        optimizer.step()


def _in_legs(classes, start, hyper, second_group, grads, tmp_path):
    """Train with ``classes[0]``, then with each next class from the previous one's checkpoint
    on disk (after FIRST_SAVE and SECOND_SAVE steps); return the last parameters and optimizer."""
    bounds = (0, FIRST_SAVE, SECOND_SAVE, len(grads))
    values, saved = start, None
    for leg, cls in enumerate(classes):
        params, optimizer = _optimizer(cls, values, hyper, second_group)
        if saved is not None:
            optimizer.load_state_dict(saved)
        _train(params, optimizer, grads[bounds[leg] : bounds[leg + 1]])
        torch.save({"params": params, "optimizer": optimizer.state_dict()}, tmp_path / f"leg{leg}.pt")
        checkpoint = torch.load(tmp_path / f"leg{leg}.pt")
        values, saved = checkpoint["params"], checkpoint["optimizer"]
    return params, optimizer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "hyper", "second_group"), CHECKPOINT_CASES, ids=CASE_IDS)
def test_torch_to_adamkit_to_torch_continues_the_same_trajectory(
    name, hyper, second_group, dtype, tmp_path
):
    torch_class, adamkit_class = both(name)
    start = [torch.tensor(a) for a in initial_params(dtype)]
    grads = gradients(dtype, steps=TOTAL_STEPS)
    # torch.optim resumed from its own checkpoints at the same steps: loading casts state to the
    # parameters' dtype (NAdam's mu_product too), so that is what a resumed run continues.
    reference_params, reference = _in_legs((torch_class, torch_class, torch_class), start, hyper, second_group, grads, tmp_path)
    # torch.optim, then adamkit (a new process would build adamkit's optimizer and load
    # torch's checkpoint), then torch.optim again.
    params, optimizer = _in_legs((torch_class, adamkit_class, torch_class), start, hyper, second_group, grads, tmp_path)

    agreement = Agreement(TOLERANCE[getattr(torch, dtype)])
    for index, (value, expected) in enumerate(zip(params, reference_params)):
        agreement.check(f"param[{index}]", value, expected)
    agreement.check_states(optimizer, reference)


@pytest.mark.parametrize(("name", "hyper", "second_group"), CHECKPOINT_CASES, ids=CASE_IDS)
def test_adamkit_checkpoint_resumes_in_adamkit(name, hyper, second_group, tmp_path):
    _, adamkit_class = both(name)
    start = [torch.tensor(a) for a in initial_params("float64")]
    grads = gradients("float64", steps=12)
    reference_params, reference = _optimizer(adamkit_class, start, hyper, second_group)
    _train(reference_params, reference, grads[:5])
    for state in reference.state.values():
        # Loading casts state to the parameters' dtype as torch does, NAdam's float32 mu_product too.
        state.update({slot.key: state[slot.key].double() for slot in adamkit_class.spec.scalar_state})
    _train(reference_params, reference, grads[5:])

    params, optimizer = _optimizer(adamkit_class, start, hyper, second_group)
    _train(params, optimizer, grads[:5])
    torch.save({"params": params, "optimizer": optimizer.state_dict()}, tmp_path / "adamkit.pt")
    checkpoint = torch.load(tmp_path / "adamkit.pt")
    params, optimizer = _optimizer(adamkit_class, checkpoint["params"], hyper, second_group)
    optimizer.load_state_dict(checkpoint["optimizer"])
    _train(params, optimizer, grads[5:])
    # The same code on the same numbers: a resumed run is bitwise the uninterrupted one.
    for value, expected in zip(params, reference_params):
        assert torch.equal(value, expected)


@pytest.mark.parametrize(("name", "hyper", "second_group"), CHECKPOINT_CASES, ids=CASE_IDS)
def test_loading_casts_state_to_the_parameter_dtype_like_torch(name, hyper, second_group):
    torch_class, adamkit_class = both(name)
    grads64 = gradients("float64", steps=4)
    start64 = [torch.tensor(a) for a in initial_params("float64")]
    params64, source = _optimizer(torch_class, start64, hyper, second_group)
    _train(params64, source, grads64)
    saved = source.state_dict()

    start32 = [p.detach().float() for p in params64]
    ours_params, ours = _optimizer(adamkit_class, start32, hyper, second_group)
    theirs_params, theirs = _optimizer(torch_class, start32, hyper, second_group)
    ours.load_state_dict(copy.deepcopy(saved))
    theirs.load_state_dict(copy.deepcopy(saved))

    for param, expected_param in zip(ours_params, theirs_params):
        state, expected = ours.state[param], theirs.state[expected_param]
        assert state.keys() == expected.keys()
        for key, value in expected.items():
            assert state[key].dtype == value.dtype, key
            assert state[key].dtype == (value.dtype if key == "step" else torch.float32), key
            assert torch.equal(state[key], value), key

    agreement = Agreement(TOLERANCE[torch.float32])
    for step_grads in gradients("float32", steps=5, seed=7):
        set_grads(ours_params, step_grads)
        set_grads(theirs_params, step_grads)
        ours.step()
        theirs.step()
        agreement.check_all("param", ours_params, theirs_params)
        agreement.check_states(ours, theirs)


def _trained(name, hyper, second_group, steps, seed):
    """An adamkit optimizer after ``steps`` steps of gradients drawn with ``seed``."""
    _, adamkit_class = both(name)
    params, optimizer = _optimizer(
        adamkit_class, [torch.tensor(a) for a in initial_params("float32", seed=seed)], hyper, second_group
    )
    _train(params, optimizer, gradients("float32", steps=steps, seed=seed))
    return optimizer


def _wrong_state_shape(state_dict):
    victim = next(key for key, value in state_dict["state"][1].items() if key not in SCALAR_STATE_KEYS)
    state_dict["state"][1][victim] = torch.zeros(3)
    return [victim, "(3,)", "(17,)"]  # index 1 is the size-17 parameter of group 0


def _one_group_too_few(state_dict):
    state_dict["param_groups"].pop()
    return ["1 parameter groups", "has 2"]


def _one_group_too_many(state_dict):
    state_dict["param_groups"].append(dict(state_dict["param_groups"][0], params=[]))
    return ["3 parameter groups", "has 2"]


def _group_too_small(state_dict):
    dropped = state_dict["param_groups"][0]["params"].pop()
    state_dict["state"].pop(dropped, None)
    return ["group 0", "1 parameters", "has 2"]


def _group_too_large(state_dict):
    state_dict["param_groups"][1]["params"].append(99)
    return ["group 1", "3 parameters", "has 2"]


def _state_of_an_unlisted_parameter(state_dict):
    state_dict["state"][99] = copy.deepcopy(state_dict["state"][0])
    return ["99"]


BAD_STATE_DICTS = (
    _wrong_state_shape,
    _one_group_too_few,
    _one_group_too_many,
    _group_too_small,
    _group_too_large,
    _state_of_an_unlisted_parameter,
)


@pytest.mark.parametrize("corrupt", BAD_STATE_DICTS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize(("name", "hyper", "second_group"), CHECKPOINT_CASES, ids=CASE_IDS)
def test_a_state_dict_that_does_not_fit_is_refused_and_changes_nothing(
    name, hyper, second_group, corrupt
):
    optimizer = _trained(name, hyper, second_group, steps=2, seed=3)
    state_dict = _trained(name, hyper, second_group, steps=3, seed=4).state_dict()
    assert_load_refused(optimizer, state_dict, ValueError, corrupt(state_dict))
    optimizer.step()  # still usable: the gradients of the last step are in place


@pytest.mark.skipif(not quantized.available(), reason="state_dtype='int8' needs the C kernels")
@pytest.mark.parametrize("copy_of", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))], ids=["deepcopy", "pickle"])
def test_a_copied_optimizer_keeps_its_settings_and_steps_as_the_original(copy_of):
    """copy.deepcopy and pickling keep what torch's __getstate__ leaves out: state_dtype (a copy
    without it stepped the int8 codes as float32 state, out of their bounds), kahan_summation,
    nonfinite_grads and skipped_steps."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4097)), torch.nn.Parameter(torch.randn(7).to(torch.bfloat16))]
    original = adamkit.torch.AdamW(
        params, lr=1e-2, weight_decay=0.1, amsgrad=True, state_dtype="int8", kahan_summation=False, nonfinite_grads="skip"
    )
    set_grads(params, [torch.randn_like(p) for p in params])
    original.step()
    params[0].grad[3] = float("nan")
    with pytest.warns(NonFiniteGradientWarning):
        original.step()
    copied = copy_of(original)
    assert (copied.state_dtype, copied.kahan_summation, copied.nonfinite_grads, copied.skipped_steps) == ("int8", False, "skip", 1)
    copied_params = copied.param_groups[0]["params"]
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        set_grads(params, grads)
        set_grads(copied_params, [g.clone() for g in grads])
        original.step()
        copied.step()
    for param, copied_param in zip(params, copied_params):
        assert torch.equal(copied_param, param)
        state, copied_state = original.state[param], copied.state[copied_param]
        assert state.keys() == copied_state.keys()
        for key in state:
            assert copied_state[key].dtype is state[key].dtype and torch.equal(copied_state[key], state[key]), key
    assert copied.state[copied_params[0]]["exp_avg_codes"].dtype is torch.int8
    assert "kahan_compensation" not in copied.state[copied_params[1]]
