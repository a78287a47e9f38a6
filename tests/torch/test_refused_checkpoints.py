"""load_state_dict checks the whole checkpoint before it changes anything: another optimizer's
checkpoint, a bad ``step``, compact state without its companions or of the wrong dtype or
shape, and a Kahan buffer of the wrong dtype or shape are refused, and the optimizer then
steps exactly as its twin that never saw them; torch.optim's own checkpoints of every class
still load."""

import copy
import itertools

import pytest
import torch

import adamkit.torch
from adamkit.kernels import native, quantized
from adamkit.validation import MissingKeyError

from tests.torch._compare import (
    TORCH_SPECS,
    OPTIMIZERS,
    TOLERANCE,
    Agreement,
    assert_bitwise_equal,
    assert_load_refused,
    both,
    set_grads,
)

needs_kernels = pytest.mark.skipif(not native.available(), reason="bfloat16 state and parameters need the C kernels")
needs_int8 = pytest.mark.skipif(not quantized.available(), reason="state_dtype='int8' needs the C kernels")

# The specs of optimizers torch.optim has, whose checkpoints these tests take from torch.


def _grads(params, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]


def _run(setup, steps=2, seed=0):
    """``(params, optimizer)``: ``setup``'s optimizer over fresh parameters after ``steps`` steps."""
    shapes, dtype, make = setup
    params = [torch.nn.Parameter(g) for g in _grads([torch.empty(s, dtype=dtype) for s in shapes], 12345)]
    optimizer = make(params)
    for step in range(steps):
        set_grads(params, _grads(params, seed + step))
        optimizer.step()
    return params, optimizer


def _saved(setup):
    """A state dict of ``setup``'s optimizer that fits, from another run."""
    return copy.deepcopy(_run(setup, steps=3, seed=50)[1].state_dict())


def assert_refused(setup, state_dict, error, words):
    """Loading ``state_dict`` raises ``error`` with ``words``, changes nothing, and the next step
    equals that of a twin optimizer that never tried."""
    params, optimizer = _run(setup)
    twin_params, twin = _run(setup)
    assert_load_refused(optimizer, state_dict, error, words)
    for these, stepped in ((params, optimizer), (twin_params, twin)):
        set_grads(these, _grads(these, 99))
        stepped.step()
    for index, (param, twin_param) in enumerate(zip(params, twin_params, strict=True)):
        assert_bitwise_equal(param, twin_param, f"parameter {index}")
        state, twin_state = optimizer.state[param], twin.state[twin_param]
        assert state.keys() == twin_state.keys()
        for key in state:
            assert_bitwise_equal(state[key], twin_state[key], f"state[{index}][{key!r}]")


def _adam(**options):
    return lambda params: adamkit.torch.Adam(
        [{"params": params[:1]}, {"params": params[1:], "lr": 3e-3}], lr=1e-2, amsgrad=True, **options
    )


PLAIN = ((17,), (3, 5)), torch.float32, _adam()
INT8 = ((64, 80), (7,)), torch.float32, _adam(state_dtype="int8")
BF16 = ((64, 80), (7,)), torch.float32, _adam(state_dtype="bf16")
KAHAN = ((17,), (3, 5)), torch.bfloat16, _adam()
COMPLEX = ((6,), (2, 3)), torch.complex64, _adam()


def _set(param_id, key, value):
    def corrupt(state_dict):
        state_dict["state"][param_id][key] = value(state_dict["state"][param_id].get(key))
    return corrupt


def _delete(param_id, key):
    return lambda state_dict: state_dict["state"][param_id].pop(key)


def _negative_float32_second_moment(state_dict):
    state = state_dict["state"][0]
    state["exp_avg_sq"] = -torch.ones(64, 80)
    del state["exp_avg_sq_codes"], state["exp_avg_sq_absmax"]


def _legacy(corrupt):
    """``corrupt`` applied to the state dict in adamkit 0.1.0's layout: codes under torch's keys."""
    def corrupt_legacy(state_dict):
        for param_id, state in state_dict["state"].items():
            state_dict["state"][param_id] = {key.removesuffix("_codes"): value for key, value in state.items()}
        corrupt(state_dict)
    return corrupt_legacy


# (setup, change to a state dict that fits, error, words of the message)
CORRUPTIONS = {
    "negative step": (PLAIN, _set(1, "step", lambda v: torch.tensor(-5.0)), ValueError, ["state_dict['state'][1]['step']", ">= 0", "-5.0"]),
    "nan step": (PLAIN, _set(0, "step", lambda v: torch.tensor(float("nan"))), ValueError, ["state_dict['state'][0]['step'] must be a finite count"]),
    "infinite step": (PLAIN, _set(0, "step", lambda v: float("inf")), ValueError, ["state_dict['state'][0]['step'] must be a finite count"]),
    "step of text": (PLAIN, _set(0, "step", lambda v: "3"), ValueError, ["state_dict['state'][0]['step'] must be a number or a 0-d real tensor, got str"]),
    "step of a bool": (PLAIN, _set(0, "step", lambda v: True), ValueError, ["must be a number or a 0-d real tensor, got bool"]),
    "1-d step": (PLAIN, _set(0, "step", lambda v: torch.tensor([3.0])), ValueError, ["must be a number or a 0-d real tensor, got torch.float32 (1,)"]),
    "complex step": (PLAIN, _set(0, "step", lambda v: torch.tensor(3j)), ValueError, ["0-d real tensor"]),
    "no step": (PLAIN, _delete(1, "step"), MissingKeyError, ["state_dict['state'][1] has no 'step'"]),
    "Adagrad's sum": (PLAIN, _set(0, "sum", lambda v: torch.zeros(17)), ValueError, ["state_dict['state'][0] has 'sum', which is not state of Adam"]),
    "unknown scales": (PLAIN, _set(0, "momentum_buffer_absmax", lambda v: torch.zeros(1)), ValueError, ["'momentum_buffer_absmax', which is not state of Adam"]),
    "state not a tensor": (PLAIN, _set(0, "exp_avg", lambda v: v.tolist()), ValueError, ["['exp_avg'] must be a tensor, got list"]),
    "integer state": (PLAIN, _set(1, "exp_avg_sq", lambda v: v.int()), ValueError, ["state_dict['state'][1]['exp_avg_sq'] must be a floating-point tensor, got torch.int32"]),
    "no params": (PLAIN, lambda sd: sd["param_groups"][1].pop("params"), MissingKeyError, ["state_dict['param_groups'][1] has no 'params'"]),
    "no state": (PLAIN, lambda sd: sd.pop("state"), MissingKeyError, ["state_dict has no 'state'"]),
    "no betas": (PLAIN, lambda sd: sd["param_groups"][1].pop("betas"), MissingKeyError, ["state_dict['param_groups'][1] has no 'betas'"]),
    "bad lr": (PLAIN, lambda sd: sd["param_groups"][1].update(lr=-1.0), ValueError, ["state_dict['param_groups'][1]: Invalid lr: -1.0"]),
    "flag not a bool": (PLAIN, lambda sd: sd["param_groups"][0].update(amsgrad="no"), ValueError, ["state_dict['param_groups'][0]: amsgrad must be True or False"]),
    "an id twice": (PLAIN, lambda sd: sd["param_groups"][1]["params"].__setitem__(0, 0), ValueError, ["parameter id 0 in more than one place"]),
    "codes without scales": (INT8, _delete(0, "exp_avg_absmax"), ValueError, ["state_dict['state'][0]['exp_avg_codes'] holds codes without their scales, 'exp_avg_absmax'"]),
    "0.1.0 codes without scales": (INT8, _legacy(_delete(0, "exp_avg_absmax")), ValueError, ["state_dict['state'][0]['exp_avg'] holds torch.int8 codes without their scales, 'exp_avg_absmax'"]),
    "scales without codes": (INT8, _delete(0, "exp_avg_sq_codes"), ValueError, ["state_dict['state'][0] has 'exp_avg_sq_absmax' without the codes it scales, 'exp_avg_sq_codes'"]),
    "0.1.0 scales without codes": (INT8, _legacy(_delete(0, "exp_avg_sq")), ValueError, ["state_dict['state'][0] has 'exp_avg_sq_absmax' without the codes it scales"]),
    "codes and values of one slot": (INT8, _set(0, "exp_avg", lambda v: torch.zeros(64, 80)), ValueError, ["state_dict['state'][0] has both 'exp_avg' and its 8-bit codes 'exp_avg_codes'"]),
    "0.1.0 scales of the wrong shape": (INT8, _legacy(_set(0, "exp_avg_absmax", lambda v: v[:-1])), ValueError, ["['exp_avg_absmax'] must be a float32 tensor of shape (20,)"]),
    "scales of the wrong shape": (INT8, _set(0, "exp_avg_absmax", lambda v: v[:-1]), ValueError, ["['exp_avg_absmax'] must be a float32 tensor of shape (20,)", "got torch.float32 (19,)"]),
    "scales of the wrong dtype": (INT8, _set(0, "exp_avg_absmax", lambda v: v.double()), ValueError, ["got torch.float64 (20,)"]),
    "a NaN scale": (INT8, _set(0, "exp_avg_absmax", lambda v: v.index_fill(0, torch.tensor([3]), float("nan"))), ValueError, ["['exp_avg_absmax'] must hold finite scales >= 0"]),
    "an infinite scale": (INT8, _set(0, "max_exp_avg_sq_absmax", lambda v: v.index_fill(0, torch.tensor([0]), float("inf"))), ValueError, ["['max_exp_avg_sq_absmax'] must hold finite scales >= 0"]),
    "a negative scale": (INT8, _set(0, "exp_avg_sq_absmax", lambda v: -v), ValueError, ["['exp_avg_sq_absmax'] must hold finite scales >= 0"]),
    "codes of the wrong dtype": (INT8, _set(0, "exp_avg_sq_codes", lambda v: v.view(torch.int8)), ValueError, ["['exp_avg_sq_codes'] must hold torch.uint8 codes, got torch.int8"]),
    "codes of the wrong shape": (INT8, _set(0, "exp_avg_codes", lambda v: v.reshape(-1)), ValueError, ["['exp_avg_codes'] has shape (5120,), but its parameter has shape (64, 80)"]),
    "0.1.0 codes of the wrong shape": (INT8, _legacy(_set(0, "exp_avg", lambda v: v.reshape(-1))), ValueError, ["['exp_avg_codes'] has shape (5120,), but its parameter has shape (64, 80)"]),
    "negative second moment": (INT8, _negative_float32_second_moment, ValueError, ["['exp_avg_sq'] has negative values, which state_dtype='int8' cannot hold"]),
    "bfloat16 state of the wrong shape": (BF16, _set(0, "exp_avg", lambda v: v[:3]), ValueError, ["['exp_avg'] has shape (3, 80)"]),
    "bfloat16 bit patterns as int16": (BF16, _set(0, "exp_avg_sq", lambda v: v.view(torch.int16)), ValueError, ["['exp_avg_sq'] must be a floating-point tensor, got torch.int16"]),
    "Kahan buffer of the wrong dtype": (KAHAN, _set(1, "kahan_compensation", lambda v: v.float()), ValueError, ["state_dict['state'][1]['kahan_compensation'] must be a bfloat16 tensor, got torch.float32"]),
    "Kahan buffer of the wrong shape": (KAHAN, _set(1, "kahan_compensation", lambda v: v.reshape(-1)), ValueError, ["['kahan_compensation'] has shape (15,)"]),
    "real state of a complex parameter": (COMPLEX, _set(0, "exp_avg", lambda v: torch.view_as_real(v)[:, 0].contiguous()), ValueError, ["['exp_avg'] must be a torch.complex64 tensor, as its complex parameter, got torch.float32"]),
    "complex128 state of a complex64 parameter": (COMPLEX, _set(1, "exp_avg_sq", lambda v: v.to(torch.complex128)), ValueError, ["got torch.complex128"]),
}
_MARKS = {INT8: [needs_int8], BF16: [needs_kernels], KAHAN: [needs_kernels]}


@pytest.mark.parametrize(
    ("setup", "corrupt", "error", "words"),
    [pytest.param(*case, id=name, marks=_MARKS.get(case[0], [])) for name, case in CORRUPTIONS.items()],
)
def test_a_checkpoint_that_does_not_fit_is_refused_and_changes_nothing(setup, corrupt, error, words):
    state_dict = _saved(setup)
    corrupt(state_dict)
    assert_refused(setup, state_dict, error, words)


def test_a_missing_key_is_a_key_error_as_in_torch_and_a_value_error():
    state_dict = _saved(PLAIN)
    del state_dict["param_groups"][0]["eps"]
    for error in (KeyError, ValueError):
        assert_refused(PLAIN, state_dict, error, ["state_dict['param_groups'][0] has no 'eps'"])


def _torch_state_dict(name, steps=2):
    params = [torch.nn.Parameter(g) for g in _grads([torch.empty(17), torch.empty(3, 5)], 12345)]
    hyper = {"momentum": 0.9} if name == "SGD" else {}
    optimizer = getattr(torch.optim, name)(params, **hyper)
    for step in range(steps):
        set_grads(params, _grads(params, step))
        optimizer.step()
    return optimizer.state_dict()


def _state_keys(name):
    spec = getattr(adamkit.torch, name).spec
    return {slot.key for slot in (*spec.active_slots(spec.defaults), *spec.scalar_state)}


def _same_state(source, target):
    """Whether ``source``'s checkpoint holds the state ``target`` keeps, under the same keys:
    Adam's, AdamW's and RAdam's moments are the same averages, and torch.optim loads one's
    checkpoint into the other and steps on."""
    return _state_keys(source) == _state_keys(target)


def _pairs():
    """(checkpoint's class, loading class): every two optimizers of different state."""
    return [pair for pair in itertools.permutations(OPTIMIZERS, 2) if not _same_state(*pair)]


@pytest.mark.parametrize(
    ("source", "target"), [pair for pair in itertools.permutations(OPTIMIZERS, 2) if _same_state(*pair)], ids=str
)
def test_a_checkpoint_of_the_same_state_loads_and_steps_as_in_torch(source, target):
    state_dict = _torch_state_dict(source)
    runs = []
    for cls in (getattr(torch.optim, target), getattr(adamkit.torch, target)):
        params = [torch.nn.Parameter(torch.ones(17)), torch.nn.Parameter(torch.ones(3, 5))]
        optimizer = cls(params)
        optimizer.load_state_dict(copy.deepcopy(state_dict))
        set_grads(params, _grads(params, 7))
        optimizer.step()
        runs.append(params)
    for ours, theirs in zip(*reversed(runs)):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("source", "target"), _pairs(), ids=lambda name: name)
def test_another_optimizers_checkpoint_is_refused(source, target):
    """torch.optim.Adagrad's checkpoint in Adam: torch raises KeyError: 'betas' at its step;
    adamkit refuses it at load, naming the group and the key, or the first foreign state key."""
    spec = getattr(adamkit.torch, target).spec
    setup = ((17,), (3, 5)), torch.float32, lambda params: getattr(adamkit.torch, target)(params)
    state_dict = _torch_state_dict(source)
    missing = [key for key in spec.checkpoint_keys if key not in state_dict["param_groups"][0]]
    if missing:
        assert_refused(setup, state_dict, KeyError, [f"state_dict['param_groups'][0] has no {missing[0]!r}"])
    else:
        assert_refused(setup, state_dict, ValueError, ["state_dict['state'][0] has", f"which is not state of {target}"])


@pytest.mark.parametrize("spec", TORCH_SPECS, ids=lambda spec: spec.name)
def test_checkpoint_keys_are_the_hyperparameters_torch_optim_needs_at_its_step(spec):
    """A torch checkpoint's group without a key of ``checkpoint_keys`` makes torch.optim raise
    ``KeyError`` at its step; without any other key it loads and steps."""
    torch_class = getattr(torch.optim, spec.name)
    saved = _torch_state_dict(spec.name)
    needed = set()
    for key in saved["param_groups"][0].keys() - {"params"}:
        state_dict = copy.deepcopy(saved)
        del state_dict["param_groups"][0][key]
        params = [torch.nn.Parameter(torch.ones(17)), torch.nn.Parameter(torch.ones(3, 5))]
        optimizer = torch_class(params)
        set_grads(params, _grads(params, 7))
        try:
            optimizer.load_state_dict(state_dict)
            optimizer.step()
        except KeyError:
            needed.add(key)
    assert needed == set(spec.checkpoint_keys)


# torch.optim constructor arguments whose checkpoints must load into the adamkit class of the
# same name, and step there on adamkit's kernels (foreach and fused are left out: with them the
# step would be torch's own; torch steps capturable=True on accelerators only).
TORCH_CHECKPOINTS = (
    ("Adam", {}),
    ("Adam", dict(amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(foreach=True, amsgrad=True)),
    ("Adam", dict(fused=True)),
    ("AdamW", dict(amsgrad=True)),
    ("AdamW", dict(fused=True, amsgrad=True)),
    ("Adamax", dict(weight_decay=0.1)),
    ("Adadelta", dict(rho=0.8)),
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr_decay=0.01, initial_accumulator_value=0.1)),
    ("Adagrad", dict(fused=True)),
    ("RMSprop", {}),
    ("RMSprop", dict(momentum=0.9)),
    ("RMSprop", dict(centered=True, momentum=0.5)),
)
_TORCH_ONLY = ("foreach", "fused")


def _resume_both(name, hyper, state_dict):
    """torch.optim's and adamkit's optimizer of ``name``, each loaded with ``state_dict`` and
    stepped 3 times with the same gradients; returns them with their parameters."""
    torch_class, adamkit_class = both(name)
    start = _grads([torch.empty(17), torch.empty(3, 5)], 2024)
    runs = []
    for cls, options in ((torch_class, hyper), (adamkit_class, {k: v for k, v in hyper.items() if k not in _TORCH_ONLY})):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimizer = cls(params, **options)
        optimizer.load_state_dict(copy.deepcopy(state_dict))
        for step in range(3):
            set_grads(params, _grads(params, 100 + step))
            optimizer.step()
        runs.append((params, optimizer))
    return runs


@pytest.mark.parametrize(("name", "hyper"), TORCH_CHECKPOINTS, ids=[f"{name}{hyper}" for name, hyper in TORCH_CHECKPOINTS])
def test_torch_optims_checkpoints_load_into_the_class_of_the_same_name(name, hyper):
    params = [torch.nn.Parameter(g) for g in _grads([torch.empty(17), torch.empty(3, 5)], 2024)]
    source = getattr(torch.optim, name)(params, **hyper)
    for step in range(3):
        set_grads(params, _grads(params, step))
        source.step()
    (torch_params, reference), (ours_params, ours) = _resume_both(name, hyper, source.state_dict())
    agreement = Agreement(TOLERANCE[torch.float32])
    agreement.check_all("param", ours_params, torch_params)
    agreement.check_states(ours, reference)


def _as_an_older_release_saved_it(state_dict, spec):
    """Groups with only the hyperparameters torch always wrote, ``step`` a Python number, and
    SGD's momentum buffers ``None`` (torch before 2.0 saved a buffer not made yet so)."""
    for group in state_dict["param_groups"]:
        for key in list(group):
            if key != "params" and key not in spec.checkpoint_keys:
                del group[key]
    for state in state_dict["state"].values():
        if "step" in state:
            state["step"] = int(state["step"])
    if spec.name == "SGD":
        state_dict["state"] = {index: {"momentum_buffer": None} for index in (0, 1)}
    return state_dict


@pytest.mark.parametrize("spec", TORCH_SPECS, ids=lambda spec: spec.name)
def test_a_checkpoint_of_an_older_torch_release_loads_and_resumes_as_in_torch(spec):
    state_dict = _as_an_older_release_saved_it(_torch_state_dict(spec.name, steps=3), spec)
    (torch_params, reference), (ours_params, ours) = _resume_both(spec.name, {}, state_dict)
    agreement = Agreement(TOLERANCE[torch.float32])
    agreement.check_all("param", ours_params, torch_params)
    agreement.check_states(ours, reference)
