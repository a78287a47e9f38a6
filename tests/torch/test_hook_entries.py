"""Entries that hooks store in ``optimizer.state`` beside the parameters' state, as torch's own
optimizer tests do (``optimizer.state["ran_load_state_dict_post_hook"] = True``): they load,
save and load again as in torch.optim, and the parameters' state is unaffected."""

import pytest
import torch

import adamkit.torch

FLAG = "ran_load_state_dict_post_hook"


def _flag(optimizer):
    optimizer.state[FLAG] = True


@pytest.mark.parametrize(
    ("name", "state_dtype"),
    [("Adam", None), ("AdamW", None), ("SGD", None), ("Adagrad", None), ("Adam", "int8"), ("AdamW", "int8")],
)
def test_a_post_hook_entry_loads_saves_and_loads_again_like_torch(name, state_dtype):
    runs = []
    for cls, options in ((getattr(torch.optim, name), {}), (getattr(adamkit.torch, name), {"state_dtype": state_dtype})):
        param = torch.nn.Parameter(torch.linspace(-1, 1, 5000))
        optimizer = cls([param], lr=1e-2, **{k: v for k, v in options.items() if v})
        optimizer.register_load_state_dict_post_hook(_flag)
        param.grad = torch.ones_like(param)
        optimizer.step()
        optimizer.load_state_dict(optimizer.state_dict())
        assert optimizer.state[FLAG] is True
        optimizer.load_state_dict(optimizer.state_dict())  # the saved dict now holds the entry
        optimizer.step()
        runs.append(param.detach().clone())
    torch.testing.assert_close(runs[1], runs[0], rtol=1e-2 if state_dtype else 1e-6, atol=1e-6)

