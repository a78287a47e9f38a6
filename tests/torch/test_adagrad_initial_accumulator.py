"""torch.optim's Adagrad starts every parameter's ``sum`` at the constructor's
``initial_accumulator_value``, whatever a parameter group says (found by the crash fuzzer)."""

import torch

import adamkit.torch


def _run(module):
    generator = torch.Generator().manual_seed(3)
    params = [torch.nn.Parameter(torch.randn(size, generator=generator, dtype=torch.float64)) for size in (7, 17, 1)]
    optimizer = module.Adagrad(
        [{"params": params[:1]}, {"params": params[1:2], "initial_accumulator_value": 2.0, "lr": 0.05}],
        lr=0.1, initial_accumulator_value=0.25,
    )
    optimizer.add_param_group({"params": params[2:], "initial_accumulator_value": 3.0})
    for _ in range(3):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator, dtype=param.dtype)
        optimizer.step()
    return params, [optimizer.state[param]["sum"] for param in params]


def test_a_groups_own_initial_accumulator_value_is_ignored_as_torch_ignores_it():
    (ours, our_sums), (theirs, their_sums) = _run(adamkit.torch), _run(torch.optim)
    for a, b in zip([*ours, *our_sums], [*theirs, *their_sums], strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=0)
