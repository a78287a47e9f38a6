"""adamkit.torch.AdaBelief as a class: its signature, the torch flags it refuses (torch.optim
has no AdaBelief to hand them to), and checkpoints moving to and from the authors' package."""

import contextlib
import inspect
import io

import pytest
import torch

import adamkit.torch
from tests.torch._compare import TOLERANCE, Agreement, make_params, set_grads
from tests.cases import gradients, initial_params

HYPER = dict(lr=1e-2, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1, amsgrad=True)


def test_the_signature_is_the_rules():
    parameters = inspect.signature(adamkit.torch.AdaBelief).parameters
    assert list(parameters)[:5] == ["params", "lr", "betas", "eps", "weight_decay"]
    keyword_only = {name: p.default for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert keyword_only == {
        "decoupled_weight_decay": True, "amsgrad": False, "rectify": False, "maximize": False,
        "sparse_mode": "lazy", "nonfinite_grads": "propagate", "state_dtype": None, "kahan_summation": None,
        "step_in_backward": False, "max_grad_norm": None,
    }  # fmt: skip
    assert [parameters[name].default for name in ("lr", "betas", "eps", "weight_decay")] == [1e-3, (0.9, 0.999), 1e-16, 0.0]


@pytest.mark.parametrize("flag", ["foreach", "fused", "capturable", "differentiable", "cautious"])
def test_flags_it_cannot_honour_are_refused(flag):
    param = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(TypeError, match=flag):
        adamkit.torch.AdaBelief([param], **{flag: True})


@pytest.mark.parametrize("flag", ["foreach", "capturable", "differentiable"])
def test_a_group_asking_for_torchs_implementation_is_refused(flag):
    """In a group given to the constructor, or set on a group between steps."""
    message = rf"{flag}=True asks for torch.optim's own implementation, which AdaBelief does not have"
    param = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match=message):
        adamkit.torch.AdaBelief([{"params": [param], flag: True}])
    optimizer = adamkit.torch.AdaBelief([param])
    optimizer.param_groups[0][flag] = True
    param.grad = torch.ones(3)
    with pytest.raises(ValueError, match=message):
        optimizer.step()
    assert torch.equal(param.detach(), torch.ones(3)) and not optimizer.state


def _authors(params, **hyper):
    adabelief_pytorch = pytest.importorskip("adabelief_pytorch")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the options it enables
        return adabelief_pytorch.AdaBelief(params, print_change_log=False, rectify=False, **hyper)


def test_checkpoints_move_between_the_authors_package_and_adamkit():
    """Three steps in the authors' package, three in adamkit from its checkpoint, three more back
    in the authors' package from adamkit's: as nine steps of either, and with the same state keys."""
    arrays, grads = initial_params("float64"), gradients("float64", steps=9)
    theirs, ours, reference = make_params(arrays), make_params(arrays), make_params(arrays)
    authors = _authors(theirs, **HYPER)
    adamkit_optimizer = adamkit.torch.AdaBelief(ours, **HYPER)
    whole = adamkit.torch.AdaBelief(reference, **HYPER)
    for index, step_grads in enumerate(grads):
        set_grads(reference, step_grads)
        whole.step()
        if index == 3:
            adamkit_optimizer.load_state_dict(authors.state_dict())
            with torch.no_grad():
                for mine, other in zip(ours, theirs):
                    mine.copy_(other)
        if index == 6:
            saved = adamkit_optimizer.state_dict()
            for state in saved["state"].values():
                # The authors' package counts steps in a Python int (a tensor's powers of β
                # would be float32).
                state["step"] = int(state["step"])
            authors.load_state_dict(saved)
            with torch.no_grad():
                for other, mine in zip(theirs, ours):
                    other.copy_(mine)
        stepped = (theirs, authors) if index < 3 or index >= 6 else (ours, adamkit_optimizer)
        set_grads(stepped[0], step_grads)
        stepped[1].step()
    assert set(adamkit_optimizer.state[ours[0]]) == set(authors.state[theirs[0]]) == {"step", "exp_avg", "exp_avg_var", "max_exp_avg_var"}
    Agreement(TOLERANCE[torch.float64]).check_all("param", theirs, reference)
