"""Lion with state_dtype="bf16", in both front ends: each step is the rule in float32 on the
widened ``exp_avg``, rounded stochastically with the seed of the parameter's own step count (which
Lion keeps only for this), so every step rounds with fresh bits; a run resumed from a checkpoint
continues bit for bit; checkpoints without ``step`` (lion_pytorch's, older adamkit's) load with
the count at 0."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import adamkit.numpy as akn  # noqa: E402
import adamkit.torch as akt  # noqa: E402
from adamkit import rules  # noqa: E402
from adamkit.compact import bfloat16  # noqa: E402
from adamkit.compact.policy import rounding_seed  # noqa: E402
from adamkit.kernels import native  # noqa: E402

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")
SIZES = (4097, 7, 5000)  # the 7-element parameter keeps float32 state
GROUPS = ({"lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.1}, {"decoupled_weight_decay": False, "maximize": True})


def gradients(seed):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 0, n)).astype(np.float32) for n in SIZES]


def torch_lion(params=None):
    rng = np.random.default_rng(99)
    params = params or [torch.nn.Parameter(torch.from_numpy(rng.standard_normal(n).astype(np.float32))) for n in SIZES]
    groups = [{"params": params[:2]}, {"params": params[2:], **GROUPS[1]}]
    return params, akt.Lion(groups, **GROUPS[0], state_dtype="bf16")


def torch_step(params, opt, seed):
    for param, grad in zip(params, gradients(seed)):
        param.grad = torch.from_numpy(grad)
    opt.step()


def rule_arguments(group_index):
    return {**GROUPS[0], **(GROUPS[1] if group_index else {})}


def test_each_step_is_the_float32_rule_rounded_with_the_seed_of_its_own_step():
    params, opt = torch_lion()
    for step in range(1, 5):
        before = [p.detach().numpy().copy() for p in params], [dict(opt.state[p]) for p in params]
        if step > 1:
            before_exp_avg = [
                bfloat16.to_float32(s["exp_avg"].view(torch.uint16).numpy())
                if s["exp_avg"].dtype == torch.bfloat16
                else s["exp_avg"].numpy().copy()
                for s in before[1]
            ]
        else:
            before_exp_avg = [np.zeros(n, np.float32) for n in SIZES]
        torch_step(params, opt, step)
        for index, (param, grad) in enumerate(zip(params, gradients(step))):
            new = rules.lion(before[0][index], grad, before_exp_avg[index], **rule_arguments(index >= 2))
            np.testing.assert_array_equal(param.detach().numpy(), new.param, strict=True)
            state = opt.state[param]
            assert state["step"].item() == step
            if index == 1:
                np.testing.assert_array_equal(state["exp_avg"].numpy(), new.exp_avg, strict=True)
                continue
            # Each group's first (and only) parameter with bfloat16 state: position 0.
            expected = bfloat16.stochastically_rounded(new.exp_avg, rounding_seed(step, 0), 0)
            np.testing.assert_array_equal(state["exp_avg"].view(torch.uint16).numpy(), expected, strict=True)


def test_the_rounding_bits_change_from_step_to_step():
    """The same exp_avg and gradient rounded at two step counts round differently somewhere:
    the seed is not a constant, as it was before Lion counted its steps."""
    values = np.random.default_rng(0).standard_normal(4097).astype(np.float32)
    first, second = (bfloat16.stochastically_rounded(values, rounding_seed(step, 0), 0) for step in (1, 2))
    assert (first != second).mean() > 0.2


def test_a_run_resumed_from_its_checkpoint_continues_bit_for_bit():
    params, opt = torch_lion()
    for seed in range(3):
        torch_step(params, opt, seed)
    saved = copy.deepcopy(opt.state_dict())
    saved_params = [p.detach().clone() for p in params]
    for seed in range(3, 6):
        torch_step(params, opt, seed)
    resumed_params, resumed = torch_lion([torch.nn.Parameter(p.clone()) for p in saved_params])
    resumed.load_state_dict(saved)
    for seed in range(3, 6):
        torch_step(resumed_params, resumed, seed)
    for param, again in zip(params, resumed_params):
        assert torch.equal(param, again)
        for key, value in opt.state[param].items():
            assert torch.equal(value, resumed.state[again][key]), key


def test_a_checkpoint_without_step_loads_with_the_count_at_zero():
    """lion_pytorch and adamkit before Lion counted steps save no ``step``: such a checkpoint loads,
    and the next step is the first count, as from a fresh start (with the saved exp_avg)."""
    params, opt = torch_lion()
    torch_step(params, opt, 0)
    saved = copy.deepcopy(opt.export_torch_state_dict())
    for state in saved["state"].values():
        del state["step"]
    resumed_params, resumed = torch_lion([torch.nn.Parameter(p.detach().clone()) for p in params])
    resumed.load_state_dict(saved)
    assert all(resumed.state[p]["step"].item() == 0 for p in resumed_params)
    torch_step(resumed_params, resumed, 1)
    assert all(resumed.state[p]["step"].item() == 1 for p in resumed_params)
    with pytest.raises(KeyError, match="step"):
        akt.Adam(resumed_params).load_state_dict(
            {
                "state": {0: {"exp_avg": torch.zeros(SIZES[0]), "exp_avg_sq": torch.zeros(SIZES[0])}},
                "param_groups": [{**akt.Adam(resumed_params).state_dict()["param_groups"][0]}],
            }
        )


def test_the_numpy_front_end_steps_as_the_torch_one_and_loads_without_step():
    params, opt = torch_lion()
    arrays = [p.detach().numpy().copy() for p in params]
    groups = [{"params": arrays[:2]}, {"params": arrays[2:], **GROUPS[1]}]
    numpy_opt = akn.Lion(groups, **GROUPS[0], state_dtype="bf16")
    for seed in range(3):
        torch_step(params, opt, seed)
        numpy_opt.step(gradients(seed))
    for index, (param, array) in enumerate(zip(params, arrays)):
        np.testing.assert_array_equal(array, param.detach().numpy(), strict=True)
        ours = opt.state[param]["exp_avg"]
        ours = ours.view(torch.uint16).numpy() if ours.dtype == torch.bfloat16 else ours.numpy()
        np.testing.assert_array_equal(numpy_opt.state[index]["exp_avg"], ours, strict=True)
    saved = numpy_opt.state_dict()
    stepless = {key: value for key, value in saved.items() if not key.endswith(".step")}
    again = akn.Lion(
        [{"params": [a.copy() for a in arrays[:2]]}, {"params": [a.copy() for a in arrays[2:]], **GROUPS[1]}],
        **GROUPS[0],
        state_dtype="bf16",
    )
    again.load_state_dict(stepless)
    assert [float(again.state[i]["step"]) for i in range(3)] == [0.0, 0.0, 0.0]
