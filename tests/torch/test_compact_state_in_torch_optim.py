"""Compact state and torch.optim: never a silent wrong load.

torch.optim's ``load_state_dict`` casts every state tensor to the parameter's dtype, whatever
its key, so 8-bit codes kept under ``exp_avg`` (adamkit 0.1.0) were stepped as moments. They are
now kept under keys torch does not use (``exp_avg_codes``, ``exp_avg_absmax``): torch.optim loads
such a state dict without complaint, as it loads anything, and raises ``KeyError`` at its first
step, before it changes any parameter of the group, for every rule with compact state. bfloat16
state stays under torch's keys: torch widens it to the float32 moments it stands for, exactly.
``export_torch_state_dict()`` hands torch.optim float32 state under its own keys, and adamkit
still loads the 0.1.0 layout.
"""

import copy

import pytest
import torch

import adamkit.torch
from adamkit.compact.policy import MIN_QUANTIZED_NUMEL
from adamkit.kernels import native, quantized
from adamkit.kernels.quantized import CODES_SUFFIX, codes_key

needs_int8 = pytest.mark.skipif(not quantized.available(), reason="state_dtype='int8' needs the C kernels")
needs_kernels = pytest.mark.skipif(not native.available(), reason="state_dtype='bf16' needs the C kernels")

# Each rule with compact state, with non-default hyperparameters for its two groups.
RULES = {
    "Adam": ({"lr": 2e-3, "betas": (0.8, 0.99), "weight_decay": 0.1}, {"lr": 5e-3, "maximize": True}),
    "Adam-amsgrad": ({"lr": 2e-3, "amsgrad": True, "eps": 1e-6}, {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.05}),
    "AdamW": ({"lr": 3e-3, "weight_decay": 0.05}, {"lr": 1e-3, "betas": (0.7, 0.95)}),
    "AdamW-amsgrad": ({"lr": 3e-3, "amsgrad": True}, {"lr": 1e-3, "amsgrad": True, "maximize": True}),
    "Adamax": ({"lr": 5e-3, "betas": (0.8, 0.99), "weight_decay": 0.1}, {"lr": 1e-2, "eps": 1e-3}),
    "Adadelta": ({"lr": 0.5, "rho": 0.8, "eps": 1e-4}, {"lr": 2.0, "rho": 0.95, "maximize": True}),
}
# torch.optim's implementations on the CPU: each goes through the same _init_group first.
TORCH_FLAGS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
# 4096 and 64x80 elements keep compact state; 7 and 17 keep float32 state.
SHAPES = [(MIN_QUANTIZED_NUMEL,), (7,), (64, 80), (17,)]


def _class_name(rule):
    return rule.split("-")[0]


def _params(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in SHAPES]


def _set_grads(params, seed):
    generator = torch.Generator().manual_seed(1000 + seed)
    for param in params:
        param.grad = torch.randn(param.shape, generator=generator)


def _groups(rule, params, first=(0, 1)):
    """Two groups with the rule's hyperparameters: ``first`` of ``params`` and the rest."""
    hyper = RULES[rule]
    rest = [i for i in range(len(params)) if i not in first]
    return [{"params": [params[i] for i in first], **hyper[0]}, {"params": [params[i] for i in rest], **hyper[1]}]


def _trained(rule, state_dtype, steps=3, first=(0, 1)):
    params = _params()
    optimizer = getattr(adamkit.torch, _class_name(rule))(_groups(rule, params, first), state_dtype=state_dtype)
    for step in range(steps):
        _set_grads(params, step)
        optimizer.step()
    return params, optimizer


def _torch_twin(rule, params, flags=None, first=(0, 1)):
    """torch.optim's optimizer of ``rule`` over copies of ``params``, and those copies."""
    twins = [torch.nn.Parameter(param.detach().clone()) for param in params]
    return getattr(torch.optim, _class_name(rule))(_groups(rule, twins, first), **(flags or {})), twins


def _torch_flags(rule):
    names = ["for-loop", "foreach"] + (["fused"] if _class_name(rule) in ("Adam", "AdamW") else [])
    return [pytest.param(rule, name, id=f"{rule}-{name}") for name in names]


@needs_int8
@pytest.mark.parametrize(("rule", "flags"), [case for rule in RULES for case in _torch_flags(rule)])
def test_torch_optim_loads_an_int8_state_dict_and_raises_at_its_first_step_changing_nothing(rule, flags):
    params, optimizer = _trained(rule, "int8")
    saved = optimizer.state_dict()
    assert any(key.endswith(CODES_SUFFIX) for key in saved["state"][0])
    theirs, twins = _torch_twin(rule, params, TORCH_FLAGS[flags])
    theirs.load_state_dict(copy.deepcopy(saved))  # torch.optim loads anything whose groups have the right sizes
    _set_grads(twins, 99)
    before = [twin.detach().clone() for twin in twins]
    first_slot = getattr(adamkit.torch, _class_name(rule)).spec.slots[0].key
    with pytest.raises(KeyError, match=repr(first_slot)):
        theirs.step()
    for index, (twin, value) in enumerate(zip(twins, before)):
        assert torch.equal(twin.detach(), value), f"torch.optim changed parameter {index}"


@needs_int8
@pytest.mark.parametrize("rule", RULES)
def test_torch_optim_steps_groups_of_float32_state_and_raises_before_a_group_with_codes(rule):
    """With float32 state only (7 and 17 elements) in its first group, torch.optim steps that group
    from correct float32 state, then raises on the group holding codes, which it leaves as it was."""
    first = (1, 3)
    params, optimizer = _trained(rule, "int8", first=first)
    theirs, twins = _torch_twin(rule, params, first=first)
    theirs.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    reference, reference_twins = _torch_twin(rule, params, first=first)
    reference.load_state_dict(copy.deepcopy(optimizer.export_torch_state_dict()))
    for each in (twins, reference_twins):
        _set_grads(each, 99)
    with pytest.raises(KeyError):
        theirs.step()
    for index in (0, 2):  # the reference steps the first group only
        reference_twins[index].grad = None
    reference.step()
    for index in first:
        assert torch.equal(twins[index], reference_twins[index]), index
        assert not torch.equal(twins[index], params[index]), index
    for index in (0, 2):
        assert torch.equal(twins[index], params[index]), index


@needs_kernels
@pytest.mark.parametrize("rule", RULES)
def test_bfloat16_state_loads_into_torch_optim_as_the_float32_state_it_stands_for(rule):
    """torch.optim casts bfloat16 state to the float32 parameter's dtype, which is exact: the
    state dict steps in torch.optim bit for bit as ``export_torch_state_dict()`` does."""
    params, optimizer = _trained(rule, "bf16")
    assert optimizer.state_dict()["state"][0][getattr(adamkit.torch, _class_name(rule)).spec.slots[0].key].dtype == torch.bfloat16
    runs = []
    for saved in (optimizer.state_dict(), optimizer.export_torch_state_dict()):
        theirs, twins = _torch_twin(rule, params)
        theirs.load_state_dict(copy.deepcopy(saved))  # torch keeps the very `step` tensors it loads
        for step in range(3):
            _set_grads(twins, 50 + step)
            theirs.step()
        runs.append(twins)
    for index, (loaded, exported) in enumerate(zip(*runs)):
        assert torch.equal(loaded, exported), index
        assert not torch.equal(loaded, params[index]), index


@needs_int8
@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
@pytest.mark.parametrize("rule", RULES)
def test_the_exported_state_steps_in_torch_optim_as_in_adamkit(rule, state_dtype):
    params, optimizer = _trained(rule, state_dtype)
    exported = optimizer.export_torch_state_dict()
    assert not any(key.endswith(CODES_SUFFIX) or key.endswith("_absmax") for state in exported["state"].values() for key in state)
    theirs, twins = _torch_twin(rule, params)
    theirs.load_state_dict(copy.deepcopy(exported))
    ours = [torch.nn.Parameter(param.detach().clone()) for param in params]
    plain = getattr(adamkit.torch, _class_name(rule))(_groups(rule, ours))
    plain.load_state_dict(exported)
    for step in range(3):
        _set_grads(twins, 70 + step)
        _set_grads(ours, 70 + step)
        theirs.step()
        plain.step()
    for index, (mine, twin) in enumerate(zip(ours, twins)):
        torch.testing.assert_close(mine, twin, msg=f"parameter {index}")


def _as_0_1_0(state_dict):
    """``state_dict`` in the layout adamkit 0.1.0 saved: the codes under torch's keys
    (``exp_avg`` int8 beside ``exp_avg_absmax``). Its ``state_dict()`` differs from today's in
    those key names only (checked against 0.1.0's code when the keys changed)."""
    converted = copy.deepcopy(state_dict)
    for param_id, state in converted["state"].items():
        converted["state"][param_id] = {key.removesuffix(CODES_SUFFIX): value for key, value in state.items()}
    return converted


@needs_int8
@pytest.mark.parametrize("rule", RULES)
def test_an_int8_state_dict_of_adamkit_0_1_0_loads_and_resumes_as_the_current_one(rule):
    params, optimizer = _trained(rule, "int8")
    old = _as_0_1_0(optimizer.state_dict())
    slot = getattr(adamkit.torch, _class_name(rule)).spec.slots[0].key
    assert old["state"][0][slot].dtype in (torch.int8, torch.uint8) and codes_key(slot) not in old["state"][0]
    resumed, states = {}, {}
    for name, saved in (("current", optimizer.state_dict()), ("0.1.0", old)):
        copies = [torch.nn.Parameter(param.detach().clone()) for param in params]
        loaded = getattr(adamkit.torch, _class_name(rule))(_groups(rule, copies), state_dtype="int8")
        loaded.load_state_dict(copy.deepcopy(saved))
        states[name] = [copy.deepcopy(loaded.state[twin]) for twin in copies]
        for param, twin in zip(params, copies):
            assert loaded.state[twin].keys() == optimizer.state[param].keys(), name
            for key, value in optimizer.state[param].items():
                assert loaded.state[twin][key].dtype == value.dtype, key
                if not key.endswith("_absmax"):  # the scales are computed again, to within an ulp
                    assert torch.equal(loaded.state[twin][key], value), key
        for step in range(2):
            _set_grads(copies, 30 + step)
            loaded.step()
        resumed[name] = copies
    for current, legacy in zip(states["current"], states["0.1.0"]):
        assert current.keys() == legacy.keys() and all(torch.equal(current[key], legacy[key]) for key in current)
    for current, legacy in zip(resumed["current"], resumed["0.1.0"]):
        assert torch.equal(current, legacy)
    # Into a float32 optimizer, the 0.1.0 codes are decoded as today's are.
    decoded = []
    for saved in (optimizer.state_dict(), old):
        plain = getattr(adamkit.torch, _class_name(rule))(_groups(rule, [torch.nn.Parameter(p.detach().clone()) for p in params]))
        plain.load_state_dict(saved)
        decoded.append(plain.state_dict()["state"])
    assert decoded[0][0][slot].dtype == torch.float32 and torch.equal(decoded[0][0][slot], decoded[1][0][slot])
