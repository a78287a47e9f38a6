"""``cautious=True`` in the front ends (:mod:`adamkit.rules.cautious`): the keyword, the kernels'
two passes against the rule through every torch path, torch's flags, checkpoints, and the
settings that refuse it (8-bit state, lazy sparse steps). The device path is in
tests/torch/test_multi_tensor.py, the kernels bit for bit in tests/kernels, FSDP2 and DDP/ZeRO in
tests/torch/test_fsdp.py and test_distributed.py."""

import inspect
import warnings

import numpy as np
import pytest
import torch

import adamkit.numpy
import adamkit.torch
from adamkit.kernels import native
from tests.cases import GROUP_OF_SIZE, gradients, initial_params
from tests.rules._drive import group_hyperparameters, run_rule
from tests.torch._compare import assert_bitwise_equal, set_grads, snapshot

NAMES = ("Adam", "AdamW", "Lion", "AdEMAMix")
# Non-default hyperparameters of each class, and a second group's own.
GROUPS = {
    "Adam": ({"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}, {"maximize": True, "amsgrad": False}),
    "AdamW": ({"lr": 1e-2, "betas": (0.8, 0.99)}, {"eps": 1e-3, "weight_decay": 0.0}),
    "Lion": ({"lr": 1e-2, "weight_decay": 0.1}, {"decoupled_weight_decay": False, "maximize": True}),
    "AdEMAMix": ({"lr": 1e-2, "alpha": 3.0, "t_alpha_beta3": 5.0}, {"weight_decay": 0.1}),
}
STEPS = 5

needs_kernels = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")


def _train(name, dtype=torch.float32, **options):
    """``STEPS`` steps of ``name`` on the shared sizes in two groups (1 and 17, then 7 and 4097)."""
    params = [torch.nn.Parameter(torch.tensor(a)).to(dtype) for a in initial_params("float32")]
    params = [torch.nn.Parameter(p.detach()) for p in params]
    first, second = GROUPS[name]
    optimizer = getattr(adamkit.torch, name)([params[0], params[2]], **first, **options)
    optimizer.add_param_group({"params": [params[1], params[3]], **second})
    for step in gradients("float32", steps=STEPS):
        set_grads(params, [torch.tensor(g).to(dtype) for g in step])
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("name", NAMES)
def test_the_keyword_is_keyword_only_and_off_by_default(name):
    for cls in (getattr(adamkit.torch, name), getattr(adamkit.numpy, name)):
        parameter = inspect.signature(cls).parameters["cautious"]
        assert parameter.kind is parameter.KEYWORD_ONLY and parameter.default is False, cls


@needs_kernels
@pytest.mark.parametrize("name", NAMES)
def test_the_kernels_step_the_rule_bit_for_bit(name):
    """The kernels (their cached plan from the second step on) against the reference backend,
    which runs the rule; and the option is not ignored."""
    got, optimizer = _train(name, cautious=True)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference backend says once that it steps alone
        patch.setattr(native, "available", lambda: False)
        want, reference = _train(name, cautious=True)
    plain, _ = _train(name)
    for index, (g, w) in enumerate(zip(got, want)):
        assert_bitwise_equal(g, w, f"param {index}")
        for key, value in reference.state[w].items():
            assert_bitwise_equal(optimizer.state[g][key], value, f"state[{index}][{key!r}]")
    assert all(group["cautious"] for group in optimizer.param_groups)
    assert not torch.equal(got[3], plain[3])


@needs_kernels
def test_bfloat16_parameters_and_bfloat16_state_take_the_two_passes():
    """bfloat16 parameters (Kahan) and bfloat16 state (stochastic rounding) follow the float32
    trajectory to bfloat16 precision."""
    want, _ = _train("AdamW", cautious=True)
    for dtype, options in ((torch.bfloat16, {}), (torch.float32, {"state_dtype": "bf16"})):
        got, _ = _train("AdamW", dtype, cautious=True, **options)
        for g, w in zip(got, want):
            torch.testing.assert_close(g.float(), w, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("flag", ["foreach", "capturable", "differentiable"])
def test_torchs_implementation_flags_are_refused(flag):
    with pytest.raises(ValueError, match=rf"cautious=True cannot be used with {flag}=True"):
        adamkit.torch.AdamW([torch.zeros(3, requires_grad=True)], cautious=True, **{flag: True})


@needs_kernels
def test_fused_true_on_the_cpu_is_the_kernels():
    got, _ = _train("Adam", cautious=True, fused=True)
    want, _ = _train("Adam", cautious=True)
    for g, w in zip(got, want):
        assert_bitwise_equal(g, w)


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_value_is_refused_and_changes_nothing(name):
    param = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(TypeError, match=r"cautious must be True or False, got 1"):
        getattr(adamkit.torch, name)([param], cautious=1)
    optimizer = getattr(adamkit.torch, name)([param])
    before = snapshot(optimizer)
    with pytest.raises(TypeError, match=r"cautious must be True or False, got 'yes'"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "cautious": "yes"})
    assert len(optimizer.param_groups) == 1 and snapshot(optimizer).keys() == before.keys()


def test_the_group_key_saves_and_loads_and_a_torch_checkpoint_takes_the_loading_value():
    params, optimizer = _train("Adam", cautious=True)
    saved = optimizer.state_dict()
    assert [group["cautious"] for group in saved["param_groups"]] == [True, True]
    fresh = adamkit.torch.Adam([params[0], params[2]])
    fresh.add_param_group({"params": [params[1], params[3]]})
    fresh.load_state_dict(saved)
    assert [group["cautious"] for group in fresh.param_groups] == [True, True]
    # torch.optim.Adam's checkpoint has no such key: the loading optimizer's value holds.
    theirs = torch.optim.Adam(params, lr=1e-2)
    set_grads(params, [torch.ones_like(p) for p in params])
    theirs.step()
    for cautious in (False, True):
        ours = adamkit.torch.Adam(params, cautious=cautious)
        ours.load_state_dict(theirs.state_dict())
        assert ours.param_groups[0]["cautious"] is cautious
        ours.step()


@needs_kernels
def test_a_lazy_sparse_step_is_refused_and_changes_nothing_and_a_dense_one_is_taken():
    embedding = torch.nn.Embedding(10, 4, sparse=True)
    optimizer = adamkit.torch.Adam(embedding.parameters(), lr=0.1, cautious=True)
    embedding(torch.tensor([1, 3])).sum().backward()
    before = embedding.weight.detach().clone()
    with pytest.raises(
        TypeError, match=r"param_groups\[0\]\['params'\]\[0\] cannot be stepped lazily with cautious=True"
    ):
        optimizer.step()
    assert torch.equal(embedding.weight, before) and not optimizer.state
    optimizer.param_groups[0]["sparse_mode"] = "dense"
    optimizer.step()
    assert not torch.equal(embedding.weight, before)


@pytest.mark.parametrize("name", NAMES)
def test_the_numpy_front_end_steps_the_rule(name):
    """adamkit.numpy (its kernels where built) against the rule run on each array, bit for bit."""
    first, second = GROUPS[name]
    params = [p.copy() for p in initial_params("float32")]
    grads = gradients("float32", steps=STEPS)
    optimizer = getattr(adamkit.numpy, name)(
        [{"params": [params[0], params[2]]}, {"params": [params[1], params[3]], **second}], **first, cautious=True
    )
    for step in grads:
        optimizer.step([step[0], step[2], step[1], step[3]])
    for index, (param, group) in enumerate(zip(params, GROUP_OF_SIZE)):
        hyper = group_hyperparameters(name, first, second if group else {}, {"cautious": True})
        expected, _ = run_rule(name, hyper, initial_params("float32")[index], [step[index] for step in grads])
        np.testing.assert_array_equal(param, expected, err_msg=f"param {index}")
