"""A checkpoint loads only into an optimizer whose state means what it saved, in both front ends.

Every ordered pair of rules (:data:`adamkit.specs.ALL`): the first's checkpoint, after two
steps, is loaded into the second. The NumPy front end owns its format, and refuses every other
rule's checkpoint with a ``ValueError`` naming both rules, leaving the optimizer untouched. The
torch front end refuses it too, except between two of torch.optim's classes, where torch's
contract loads one into the other when the keys fit (an Adam checkpoint into AdamW).
"""

import copy

import numpy as np
import pytest

import adamkit.numpy
from adamkit import specs

SHAPES = ((7,), (3, 5))


def _numpy_optimizer(spec, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape) for shape in SHAPES]
    hyper, second = spec.cases[-1]
    optimizer = specs.in_train_mode(
        getattr(adamkit.numpy, spec.name)([{"params": params[:1]}, {"params": params[1:], **second}], **hyper)
    )
    for _ in range(2):
        optimizer.step([rng.standard_normal(shape) for shape in SHAPES])
    return optimizer


def _numpy_snapshot(optimizer):
    return {key: np.array(value, copy=True) for key, value in optimizer.state_dict().items()}, [
        param.copy() for group in optimizer.param_groups for param in group["params"]
    ]


def _assert_same(before, after):
    (state, params), (state_after, params_after) = before, after
    assert state.keys() == state_after.keys()
    for key in state:
        np.testing.assert_array_equal(state_after[key], state[key], err_msg=key)
    for param, param_after in zip(params, params_after, strict=True):
        np.testing.assert_array_equal(param_after, param)


def test_numpy_refuses_every_other_rules_checkpoint():
    saved = {spec.name: _numpy_optimizer(spec, 0).state_dict() for spec in specs.ALL}
    for loader in specs.ALL:
        optimizer = _numpy_optimizer(loader, 1)
        before = _numpy_snapshot(optimizer)
        for saver in specs.ALL:
            assert str(saved[saver.name]["rule"]) == saver.name
            if saver is loader:
                continue
            with pytest.raises(ValueError, match=rf"saved by {saver.name} \(state_dict\['rule'\]\), not {loader.name}"):
                optimizer.load_state_dict(saved[saver.name])
            _assert_same(before, _numpy_snapshot(optimizer))
        optimizer.load_state_dict(saved[loader.name])


def test_numpy_checkpoints_survive_savez_and_a_checkpoint_without_its_rule_still_loads(tmp_path):
    """The rule's name survives ``np.savez`` without pickling; a checkpoint saved before adamkit
    wrote it (no ``rule``) loads as it did, which is why RAdam's into ADOPT cannot be refused."""
    saved = _numpy_optimizer(specs.RADAM, 0).state_dict()
    np.savez(tmp_path / "radam.npz", **saved)
    loaded = dict(np.load(tmp_path / "radam.npz", allow_pickle=False))
    with pytest.raises(ValueError, match="saved by RAdam"):
        _numpy_optimizer(specs.ADOPT, 1).load_state_dict(loaded)
    _numpy_optimizer(specs.RADAM, 1).load_state_dict(loaded)
    del loaded["rule"]
    _numpy_optimizer(specs.ADOPT, 1).load_state_dict(loaded)


@pytest.mark.parametrize("rule", [np.array(3.0), np.array(["RAdam"])], ids=["number", "1-d"])
def test_numpy_refuses_a_rule_that_is_not_a_name(rule):
    optimizer = _numpy_optimizer(specs.RADAM, 1)
    saved = {**_numpy_optimizer(specs.RADAM, 0).state_dict(), "rule": rule}
    with pytest.raises(ValueError, match=r"state_dict\['rule'\] must be a 0-d str array"):
        optimizer.load_state_dict(saved)


def _torch_optimizer(spec, seed):
    import torch

    import adamkit.torch

    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64)) for shape in SHAPES]
    hyper, second = spec.cases[-1]
    optimizer = specs.in_train_mode(
        getattr(adamkit.torch, spec.name)([{"params": params[:1]}, {"params": params[1:], **second}], **hyper)
    )
    for _ in range(2):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator, dtype=param.dtype)
        optimizer.step()
    return optimizer


def _in_torch_optim(spec):
    import torch

    return hasattr(torch.optim, spec.name)


def test_torch_refuses_another_rules_checkpoint_unless_torch_optim_has_both():
    torch = pytest.importorskip("torch")
    saved = {spec.name: copy.deepcopy(_torch_optimizer(spec, 0).state_dict()) for spec in specs.ALL}
    assert all(group["rule"] == name for name, state_dict in saved.items() for group in state_dict["param_groups"])
    loaded = []
    for loader in specs.ALL:
        optimizer = None
        for saver in specs.ALL:
            if saver is loader:
                continue
            if optimizer is None:  # a fresh one after a checkpoint loaded
                optimizer = _torch_optimizer(loader, 1)
                before = copy.deepcopy(optimizer.state_dict())
                params = [param.detach().clone() for group in optimizer.param_groups for param in group["params"]]
            try:
                optimizer.load_state_dict(copy.deepcopy(saved[saver.name]))
            except (KeyError, ValueError) as error:
                by_rule = f"saved by {saver.name} (state_dict['param_groups'][0]['rule']), not {loader.name}" in str(error)
                assert by_rule != (_in_torch_optim(saver) and _in_torch_optim(loader)), (saver.name, loader.name, error)
                _assert_torch_same(torch, optimizer, before, params)
                continue
            loaded.append((saver.name, loader.name))
            assert all("rule" not in group for group in optimizer.param_groups)
            optimizer = None
    assert all(_in_torch_optim(specs.BY_NAME[a]) and _in_torch_optim(specs.BY_NAME[b]) for a, b in loaded), loaded
    assert ("Adam", "AdamW") in loaded and ("AdamW", "Adam") in loaded  # torch's contract


def _assert_torch_same(torch, optimizer, before, params):
    after = optimizer.state_dict()
    for param, value in zip((p for g in optimizer.param_groups for p in g["params"]), params, strict=True):
        assert torch.equal(param.detach(), value)
    assert after["state"].keys() == before["state"].keys()
    for index, state in before["state"].items():
        assert state.keys() == after["state"][index].keys()
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(after["state"][index][key]), torch.as_tensor(value)), key


def test_torch_loads_a_checkpoint_that_names_no_rule():
    """torch.optim's and the reference packages' checkpoints name no rule: they load where their
    keys and values fit, as before (RAdam's into ADOPT cannot be told apart)."""
    pytest.importorskip("torch")
    saved = copy.deepcopy(_torch_optimizer(specs.RADAM, 0).state_dict())
    for group in saved["param_groups"]:
        del group["rule"]
    optimizer = _torch_optimizer(specs.ADOPT, 1)
    optimizer.load_state_dict(saved)
    assert all("rule" not in group for group in optimizer.param_groups)
