"""Sparse COO gradients in adamkit.torch: lazy mode (the default) against a hand-written float64
lazy Adam, torch.optim.SparseAdam and torch's sparse Adagrad; dense mode against the dense step;
SGD against torch's SGD; choosing the mode, and keeping it in a state_dict; bad input."""

import copy
import re

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit.specs import SCALAR_STATE_KEYS
from adamkit.torch import _compact_state as compact_state
from tests.reference.radam import radam as reference_radam
from tests.torch._compare import assert_bitwise_equal, assert_step_refused, assert_unchanged, snapshot

SPARSE_OPTIMIZERS = {
    "Adam": dict(lr=0.03, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
    "AdamW": dict(lr=0.03, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.2),
    "AMSGrad": dict(lr=0.03, betas=(0.8, 0.95), eps=1e-6, amsgrad=True, maximize=True),
    "Adamax": dict(lr=0.03, betas=(0.85, 0.97), eps=1e-5, weight_decay=0.05),
    "Adagrad": dict(lr=0.1, lr_decay=0.02, initial_accumulator_value=0.1, eps=1e-7),
    "Adadelta": dict(lr=0.7, rho=0.85, eps=1e-5, weight_decay=0.1),
    "NAdam": dict(lr=0.03, betas=(0.8, 0.95), momentum_decay=0.05, weight_decay=0.05, decoupled_weight_decay=True),
    "RAdam": dict(lr=0.03, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, maximize=True),
    "AdaBelief": dict(lr=0.03, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1, amsgrad=True, rectify=True),
    "ADOPT": dict(lr=0.03, betas=(0.8, 0.95), eps=1e-5, weight_decay=0.1, maximize=True),
    "Lion": dict(lr=0.03, betas=(0.85, 0.97), weight_decay=0.1, decoupled_weight_decay=False, maximize=True),
}


def _optimizer(name, params, mode="lazy", **overrides):
    cls = adamkit.torch.Adam if name == "AMSGrad" else getattr(adamkit.torch, name)
    return cls(params, sparse_mode=mode, **{**SPARSE_OPTIMIZERS[name], **overrides})


def _sparse_grad(shape, rows, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(len(rows), *shape[1:], generator=generator, dtype=dtype)
    return torch.sparse_coo_tensor(torch.tensor([rows]), values, shape, check_invariants=True)


def _table(shape, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.Parameter(torch.randn(*shape, generator=generator, dtype=dtype))


# Rows touched per step: with duplicates, and rows 2 and 5 never touched.
SCHEDULE = [[0, 3, 3, 6], [1, 6], [0, 0, 0], [3, 4, 6, 1], [6]]


def _follow_schedule(shape, *runs):
    """Step each ``(param, optimizer, as_grad)`` through SCHEDULE's sparse gradients, with
    ``param.grad = as_grad(grad)``."""
    for seed, rows in enumerate(SCHEDULE):
        grad = _sparse_grad(shape, rows, seed)
        for param, optimizer, as_grad in runs:
            param.grad = as_grad(grad)
            optimizer.step()


def _lazy_adam_by_hand(param, grads, *, lr, betas, eps, weight_decay, decoupled):
    """Lazy Adam in float64, written from its definition: on the rows of each coalesced
    gradient only, with the per-parameter step t."""
    beta1, beta2 = betas
    param = param.copy()
    m, v = np.zeros_like(param), np.zeros_like(param)
    for t, (rows, values) in enumerate(grads, start=1):
        g = np.zeros_like(param)
        np.add.at(g, rows, values)  # duplicates are summed
        for r in sorted(set(rows)):
            if decoupled:
                param[r] = param[r] * (1 - lr * weight_decay)
                gr = g[r]
            else:
                gr = g[r] + weight_decay * param[r]
            m[r] = beta1 * m[r] + (1 - beta1) * gr
            v[r] = beta2 * v[r] + (1 - beta2) * gr**2
            m_hat = m[r] / (1 - beta1**t)
            v_hat = v[r] / (1 - beta2**t)
            param[r] = param[r] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return param, m, v


@pytest.mark.parametrize("width", [1, 7, 17, 4097])
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_lazy_adam_equals_a_float64_lazy_adam_by_hand(name, width):
    shape = (7, width)
    param = _table(shape, seed=width)
    initial = param.detach().clone()
    optimizer = _optimizer(name, [param])
    grads = []
    for seed, rows in enumerate(SCHEDULE):
        grad = _sparse_grad(shape, rows, seed)
        grads.append((np.array(rows), grad._values().numpy().copy()))
        param.grad = grad
        optimizer.step()
    hyper = SPARSE_OPTIMIZERS[name]
    expected, m, v = _lazy_adam_by_hand(
        initial.numpy(),
        grads,
        lr=hyper["lr"],
        betas=hyper["betas"],
        eps=hyper["eps"],
        weight_decay=hyper["weight_decay"],
        decoupled=name == "AdamW",
    )
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(optimizer.state[param]["exp_avg"].numpy(), m, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(optimizer.state[param]["exp_avg_sq"].numpy(), v, rtol=1e-12, atol=1e-15)
    assert float(optimizer.state[param]["step"]) == len(SCHEDULE)
    # Rows 2 and 5 were never touched: not decayed, their moments still zero.
    for row in (2, 5):
        assert_bitwise_equal(param.detach()[row], initial[row], f"row {row}")
        assert not optimizer.state[param]["exp_avg"][row].any()


@pytest.mark.parametrize("decoupled", [False, True])
def test_lazy_radam_follows_the_float64_transcription_past_the_rectification(decoupled):
    """Rows touched at each of 9 steps (RAdam rectifies from step 6 here) take the transcription's
    steps; the rows never touched are not decayed and keep zero moments. torch.optim.RAdam
    refuses sparse gradients."""
    shape, rows = (7, 17), [0, 3, 6]
    param = _table(shape, seed=9)
    initial = param.detach().clone()
    hyper = {**SPARSE_OPTIMIZERS["RAdam"], "decoupled_weight_decay": decoupled}
    optimizer = adamkit.torch.RAdam([param], **hyper)
    grads = []
    for seed in range(9):
        param.grad = _sparse_grad(shape, rows, seed)
        grads.append(param.grad._values().numpy().copy())
        optimizer.step()
    expected, state = reference_radam(initial.numpy()[rows], grads, **hyper)
    np.testing.assert_allclose(param.detach().numpy()[rows], expected, rtol=1e-12, atol=1e-15)
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(optimizer.state[param][key].numpy()[rows], state[key], rtol=1e-12, atol=1e-15)
    untouched = [1, 2, 4, 5]
    assert_bitwise_equal(param.detach()[untouched], initial[untouched], "untouched rows")
    assert not optimizer.state[param]["exp_avg_sq"][untouched].any()
    with pytest.raises(RuntimeError, match="RAdam does not support sparse gradients"):
        torch.optim.RAdam([param], **hyper).step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_untouched_rows_and_their_state_are_bitwise_unchanged(name, dtype):
    param = _table((17, 7), dtype=dtype, seed=1)
    optimizer = _optimizer(name, [param])
    param.grad = _sparse_grad((17, 7), [0, 4, 9, 16], seed=2, dtype=dtype)
    optimizer.step()
    before = snapshot(optimizer)
    param.grad = _sparse_grad((17, 7), [4, 4, 11], seed=3, dtype=dtype)
    optimizer.step()
    untouched = [r for r in range(17) if r not in (4, 11)]
    assert_bitwise_equal(param.detach()[untouched], before["params"][0][untouched], "param")
    assert not torch.equal(param.detach()[[4, 11]], before["params"][0][[4, 11]])
    for key, value in optimizer.state[param].items():
        if key not in SCALAR_STATE_KEYS:
            assert_bitwise_equal(value[untouched], before["state"][0][key][untouched], key)


@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_touched_rows_take_the_dense_step_of_those_rows(name):
    """Lazy on a table equals the dense optimizer on a table made of the touched rows alone."""
    param = _table((17, 7), seed=4)
    rows = [1, 8, 15]
    sub = torch.nn.Parameter(param.detach()[rows].clone())
    lazy = _optimizer(name, [param])
    dense = _optimizer(name, [sub])
    for seed in range(3):
        grad = _sparse_grad((17, 7), rows, seed)
        param.grad = grad
        sub.grad = grad._values().clone()
        lazy.step()
        dense.step()
    assert_bitwise_equal(param.detach()[rows], sub.detach(), "touched rows")


@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_duplicate_indices_are_coalesced(name):
    shape = (17, 7)
    with_duplicates, summed = _table(shape, seed=5), _table(shape, seed=5)
    first, second = _optimizer(name, [with_duplicates]), _optimizer(name, [summed])
    values = torch.randn(5, 7, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    rows = [9, 2, 9, 2, 9]
    with_duplicates.grad = torch.sparse_coo_tensor(torch.tensor([rows]), values, shape, check_invariants=True)
    summed.grad = with_duplicates.grad.coalesce()
    first.step()
    second.step()
    assert_bitwise_equal(with_duplicates.detach(), summed.detach(), "param")
    expected = torch.zeros(shape, dtype=torch.float64)
    expected.index_add_(0, torch.tensor(rows), values)
    assert torch.allclose(summed.grad.to_dense(), expected, rtol=1e-15)


@pytest.mark.parametrize("width", [1, 7, 4097])
@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_dense_mode_equals_the_dense_step(name, width):
    shape = (7, width)
    sparse_param, dense_param = _table(shape, seed=7), _table(shape, seed=7)
    sparse_optimizer = _optimizer(name, [sparse_param], mode="dense")
    dense_optimizer = _optimizer(name, [dense_param])
    for seed, rows in enumerate(SCHEDULE):
        grad = _sparse_grad(shape, rows, seed)
        sparse_param.grad = grad
        dense_param.grad = grad.to_dense()
        sparse_optimizer.step()
        dense_optimizer.step()
        assert sparse_param.grad is grad  # the gradient is put back untouched
    assert_bitwise_equal(sparse_param.detach(), dense_param.detach(), "param")
    for key, value in dense_optimizer.state[dense_param].items():
        assert_bitwise_equal(sparse_optimizer.state[sparse_param][key], value, key)


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_eps_hat_lazy_adam_follows_sparse_adam_for_20_steps(dtype, rtol):
    torch.manual_seed(8)
    ours = torch.nn.Embedding(1000, 17, sparse=True, dtype=dtype)
    theirs = torch.nn.Embedding(1000, 17, sparse=True, dtype=dtype)
    theirs.load_state_dict(ours.state_dict())
    hyper = dict(lr=0.02, betas=(0.85, 0.98), eps=1e-5)
    optimizer = adamkit.torch.Adam(ours.parameters(), eps_hat=True, **hyper)  # lazy by default
    reference = torch.optim.SparseAdam(theirs.parameters(), **hyper)
    for step in range(20):
        indices = torch.randint(0, 1000, (40,))
        target = torch.randn(40, 17, dtype=dtype)
        for module, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            ((module(indices) - target) ** 2).sum().backward()
            opt.step()
        scale = theirs.weight.detach().abs().max()
        error = (ours.weight.detach() - theirs.weight.detach()).abs().max()
        assert error <= rtol * scale, f"step {step + 1}: {error} > {rtol} * {scale}"
    for key in ("exp_avg", "exp_avg_sq"):
        expected = reference.state[theirs.weight][key]
        assert torch.allclose(optimizer.state[ours.weight][key], expected, rtol=rtol * 10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lazy_adagrad_equals_torch_adagrad_on_sparse_gradients(dtype):
    hyper = dict(lr=0.1, lr_decay=0.02, initial_accumulator_value=0.1, eps=1e-7)
    ours, theirs = _table((17, 7), dtype=dtype, seed=9), _table((17, 7), dtype=dtype, seed=9)
    optimizer = adamkit.torch.Adagrad([ours], **hyper)
    reference = torch.optim.Adagrad([theirs], **hyper)
    for seed, rows in enumerate(SCHEDULE * 2):
        grad = _sparse_grad((17, 7), rows, seed, dtype=dtype)
        ours.grad, theirs.grad = grad, grad.clone()
        optimizer.step()
        reference.step()
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=rtol, atol=0)
    torch.testing.assert_close(optimizer.state[ours]["sum"], reference.state[theirs]["sum"], rtol=rtol, atol=0)


def test_embedding_bag_gradients_train_only_the_rows_used():
    torch.manual_seed(10)
    bag = torch.nn.EmbeddingBag(50, 7, mode="sum", sparse=True, dtype=torch.float64)
    initial = bag.weight.detach().clone()
    optimizer = adamkit.torch.AdamW(bag.parameters(), lr=0.05, weight_decay=0.3)
    used = torch.tensor([[3, 8, 8], [20, 3, 41]])
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = bag(used).pow(2).sum()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    touched = sorted(set(used.flatten().tolist()))
    untouched = [r for r in range(50) if r not in touched]
    assert_bitwise_equal(bag.weight.detach()[untouched], initial[untouched], "untouched rows")
    assert (bag.weight.detach()[touched] != initial[touched]).all()


def test_dense_and_sparse_gradients_step_together_in_one_group():
    table, bias = _table((17, 7), seed=11), _table((7,), seed=12)
    alone = _table((7,), seed=12)
    optimizer = _optimizer("Adam", [table, bias])
    other = _optimizer("Adam", [alone])
    for seed in range(3):
        table.grad = _sparse_grad((17, 7), [2, 5], seed)
        bias.grad = torch.full((7,), 0.5 + seed, dtype=torch.float64)
        alone.grad = bias.grad.clone()
        optimizer.step()
        other.step()
    assert_bitwise_equal(bias.detach(), alone.detach(), "dense parameter")
    assert float(optimizer.state[table]["step"]) == 3.0


def test_a_nonfinite_sparse_gradient_is_skipped():
    param = _table((17, 7), seed=13)
    optimizer = adamkit.torch.Adam([param], nonfinite_grads="skip")
    values = torch.ones(2, 7, dtype=torch.float64)
    values[1, 3] = float("nan")
    param.grad = torch.sparse_coo_tensor(torch.tensor([[1, 4]]), values, (17, 7))
    before = param.detach().clone()
    with pytest.warns(Warning, match="param_groups\\[0\\]\\['params'\\]\\[0\\]"):
        optimizer.step()
    assert optimizer.skipped_steps == 1
    assert_bitwise_equal(param.detach(), before, "param")


# --- bad input ---------------------------------------------------------------------------------


def _hybrid(shape):
    return torch.zeros(shape, dtype=torch.float64).to_sparse(sparse_dim=2)


def _wrong_shape(shape):
    return torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, shape[1] + 1, dtype=torch.float64))


def _out_of_range(shape):
    values = torch.ones(2, shape[1], dtype=torch.float64)
    return torch.sparse_coo_tensor(torch.tensor([[1, shape[0]]]), values, shape, check_invariants=False)


def _negative(shape):
    values = torch.ones(2, shape[1], dtype=torch.float64)
    return torch.sparse_coo_tensor(torch.tensor([[-1, 2]]), values, shape, check_invariants=False)


def _wrong_dtype(shape):
    return torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, shape[1], dtype=torch.float32), shape)


BAD_GRADS = {
    "hybrid": (_hybrid, ValueError, ["sparse_dim=2", "param_groups[0]['params'][1]"]),
    "wrong-shape": (_wrong_shape, ValueError, ["(2, 8)", "(17, 7)"]),
    "out-of-range": (_out_of_range, ValueError, ["17", "[0, 17)"]),
    "negative-index": (_negative, ValueError, ["-1", "[0, 17)"]),
    "wrong-dtype": (_wrong_dtype, ValueError, ["torch.float32", "torch.float64"]),
}


@pytest.mark.parametrize("mode", ["lazy", "dense"])
@pytest.mark.parametrize("bad", list(BAD_GRADS))
def test_a_bad_sparse_gradient_raises_and_changes_nothing(bad, mode):
    make, error, words = BAD_GRADS[bad]
    good, param = _table((17, 7), seed=14), _table((17, 7), seed=15)
    optimizer = _optimizer("Adam", [good, param], mode=mode)
    good.grad, param.grad = _sparse_grad((17, 7), [1], 0), _sparse_grad((17, 7), [2], 1)
    optimizer.step()
    good.grad = _sparse_grad((17, 7), [3, 4], 2)
    param.grad.data = make((17, 7))  # torch's grad setter refuses other dtypes and shapes
    assert_step_refused(optimizer, error, words)


@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_lazy_is_the_default(name):
    cls = adamkit.torch.Adam if name == "AMSGrad" else getattr(adamkit.torch, name)
    by_default, chosen = _table((17, 7), seed=16), _table((17, 7), seed=16)
    first = cls([by_default], **SPARSE_OPTIMIZERS[name])
    second = _optimizer(name, [chosen], mode="lazy")
    assert first.param_groups[0]["sparse_mode"] == "lazy"
    _follow_schedule((17, 7), (by_default, first, torch.Tensor.clone), (chosen, second, torch.Tensor.clone))
    assert_bitwise_equal(by_default.detach(), chosen.detach(), "param")
    assert_bitwise_equal(by_default.detach()[[2, 5]], _table((17, 7), seed=16).detach()[[2, 5]], "untouched rows")


def test_a_group_key_overrides_the_constructors_sparse_mode():
    lazy, dense = _table((17, 7), seed=17), _table((17, 7), seed=17)
    alone_lazy, alone_dense = _table((17, 7), seed=17), _table((17, 7), seed=17)
    hyper = SPARSE_OPTIMIZERS["AdamW"]
    optimizer = adamkit.torch.AdamW([{"params": [lazy]}, {"params": [dense], "sparse_mode": "dense"}], **hyper)
    references = [
        adamkit.torch.AdamW([alone_lazy], sparse_mode="lazy", **hyper),
        adamkit.torch.AdamW([alone_dense], sparse_mode="dense", **hyper),
    ]
    assert [group["sparse_mode"] for group in optimizer.param_groups] == ["lazy", "dense"]
    for seed, rows in enumerate(SCHEDULE):
        grad = _sparse_grad((17, 7), rows, seed)
        for param in (lazy, dense, alone_lazy, alone_dense):
            param.grad = grad.clone()
        optimizer.step()
        for reference in references:
            reference.step()
    assert_bitwise_equal(lazy.detach(), alone_lazy.detach(), "lazy group")
    assert_bitwise_equal(dense.detach(), alone_dense.detach(), "dense group")
    assert not torch.equal(lazy.detach(), dense.detach())


def test_sparse_mode_round_trips_through_state_dict():
    param, initial = _table((17, 7), seed=18), _table((17, 7), seed=18).detach()
    optimizer = adamkit.torch.Adam(
        [{"params": [param]}, {"params": [_table((3, 7), seed=19)], "sparse_mode": "lazy"}],
        weight_decay=0.1,
        sparse_mode="dense",
    )
    param.grad = _sparse_grad((17, 7), [1, 4], 0)
    optimizer.step()
    saved = optimizer.state_dict()
    assert [group["sparse_mode"] for group in saved["param_groups"]] == ["dense", "lazy"]

    restored_param = torch.nn.Parameter(param.detach().clone())
    restored = adamkit.torch.Adam([{"params": [restored_param]}, {"params": [_table((3, 7), seed=19)]}], weight_decay=0.1)
    restored.load_state_dict(copy.deepcopy(saved))  # load_state_dict shares the state tensors
    assert [group["sparse_mode"] for group in restored.param_groups] == ["dense", "lazy"]
    param.grad = _sparse_grad((17, 7), [2], 1)
    restored_param.grad = param.grad.clone()
    optimizer.step()
    restored.step()
    assert_bitwise_equal(restored_param.detach(), param.detach(), "param after resuming")
    assert not torch.equal(param.detach()[5], initial[5])  # dense mode: weight decay moves every row

    # torch.optim keeps the key it does not know; a checkpoint without it takes the loading
    # optimizer's default.
    theirs = torch.optim.Adam([{"params": [_table((17, 7), seed=20)]}, {"params": [_table((3, 7), seed=21)]}])
    theirs.load_state_dict(saved)
    torch_checkpoint = theirs.state_dict()
    for group in torch_checkpoint["param_groups"]:
        del group["sparse_mode"]
    for default in ("lazy", "dense"):
        loaded = adamkit.torch.Adam(
            [{"params": [_table((17, 7), seed=20)]}, {"params": [_table((3, 7), seed=21)]}], sparse_mode=default
        )
        loaded.load_state_dict(torch_checkpoint)
        assert [group["sparse_mode"] for group in loaded.param_groups] == [default, default]


def test_a_state_dict_with_an_unknown_sparse_mode_is_refused_and_changes_nothing():
    param = _table((17, 7), seed=22)
    optimizer = adamkit.torch.Adam([param])
    param.grad = _sparse_grad((17, 7), [1], 0)
    optimizer.step()
    saved = optimizer.state_dict()
    saved["param_groups"][0]["sparse_mode"] = "eager"
    before = snapshot(optimizer)
    with pytest.raises(ValueError, match="sparse_mode: 'eager'"):
        optimizer.load_state_dict(saved)
    assert_unchanged(optimizer, before)
    assert optimizer.param_groups[0]["sparse_mode"] == "lazy"


@pytest.mark.parametrize("name, hyper", [("RMSprop", dict(lr=0.1, momentum=0.9)), ("Adafactor", dict(weight_decay=0.1))])
def test_refuses_sparse_gradients_as_torch_does_and_changes_nothing(name, hyper):
    good, param = _table((17, 7), seed=23), _table((17, 7), seed=24)
    optimizer = getattr(adamkit.torch, name)([good, param], **hyper)
    good.grad, param.grad = torch.ones(17, 7, dtype=torch.float64), torch.ones(17, 7, dtype=torch.float64)
    optimizer.step()
    param.grad = _sparse_grad((17, 7), [1], 0)
    before = snapshot(optimizer)
    expected = f"{name} does not support sparse gradients (param_groups[0]['params'][1])"
    with pytest.raises(TypeError, match=re.escape(expected)):
        optimizer.step()
    assert_unchanged(optimizer, before)
    with pytest.raises(RuntimeError, match=f"{name} does not support sparse gradients"):
        getattr(torch.optim, name)([param], **hyper).step()


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adafactor"])
def test_optimizers_without_a_choice_of_sparse_step_refuse_sparse_mode(name):
    param = _table((17, 7), seed=25)
    cls = getattr(adamkit.torch, name)
    with pytest.raises(ValueError, match=f"sparse_mode is not an option of {name}"):
        cls([{"params": [param], "sparse_mode": "lazy"}], lr=0.1)
    optimizer = cls([param], lr=0.1)
    with pytest.raises(ValueError, match=f"sparse_mode is not an option of {name}"):
        optimizer.add_param_group({"params": [_table((3, 7), seed=26)], "sparse_mode": "dense"})
    assert len(optimizer.param_groups) == 1
    with pytest.raises(TypeError, match="sparse_mode"):
        cls([param], lr=0.1, sparse_mode="dense")


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum-dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov-maximize": dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True),
}


@pytest.mark.parametrize("width", [1, 7, 17])
@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_takes_sparse_gradients_as_torchs_sgd_does(case, width):
    """torch's SGD steps a sparse gradient as the dense step on the densified gradient would
    (keeping its momentum buffer sparse, so its sums run in another order): so does adamkit's."""
    hyper = SGD_CASES[case]
    shape = (7, width)
    ours, theirs, dense = _table(shape, seed=27), _table(shape, seed=27), _table(shape, seed=27)
    optimizer = adamkit.torch.SGD([ours], **hyper)
    reference = torch.optim.SGD([theirs], **hyper)
    on_dense = adamkit.torch.SGD([dense], **hyper)
    for seed, rows in enumerate(SCHEDULE):
        grad = _sparse_grad(shape, rows, seed)
        ours.grad, theirs.grad, dense.grad = grad, grad.clone(), grad.to_dense()
        optimizer.step()
        reference.step()
        on_dense.step()
        assert ours.grad is grad
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-12, atol=1e-15)
    assert_bitwise_equal(ours.detach(), dense.detach(), "param")
    if "momentum" in hyper:
        expected = reference.state[theirs]["momentum_buffer"].to_dense()
        torch.testing.assert_close(optimizer.state[ours]["momentum_buffer"], expected, rtol=1e-12, atol=1e-15)


def test_sgd_with_weight_decay_takes_the_dense_step_on_the_densified_gradient():
    """torch's SGD raises here (it cannot add a dense parameter to a sparse gradient)."""
    ours, dense = _table((17, 7), seed=28), _table((17, 7), seed=28)
    hyper = dict(lr=0.05, momentum=0.9, weight_decay=0.1)
    optimizer, on_dense = adamkit.torch.SGD([ours], **hyper), adamkit.torch.SGD([dense], **hyper)
    _follow_schedule((17, 7), (ours, optimizer, torch.Tensor.clone), (dense, on_dense, torch.Tensor.to_dense))
    assert_bitwise_equal(ours.detach(), dense.detach(), "param")


def test_an_unknown_sparse_mode_is_refused():
    param = _table((17, 7), seed=29)
    with pytest.raises(ValueError, match="sparse_mode: 'eager'"):
        adamkit.torch.Adam([{"params": [param], "sparse_mode": "eager"}])
    with pytest.raises(ValueError, match="sparse_mode: 'eager'"):
        adamkit.torch.Adagrad([param], sparse_mode="eager")


def test_bfloat16_lazy_is_refused_with_the_dense_mode_suggested():
    param = torch.nn.Parameter(torch.ones(17, 7, dtype=torch.bfloat16))
    optimizer = adamkit.torch.Adam([param])
    param.grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, 7, dtype=torch.bfloat16), (17, 7))
    with pytest.raises(TypeError, match="sparse_mode='dense'"):
        optimizer.step()
    assert not optimizer.state[param]


def test_sparse_gradients_with_8_bit_state_are_refused():
    param = _table((700, 7), dtype=torch.float32, seed=19)
    if not compact_state.quantizes(param, "int8"):
        pytest.skip("8-bit state is not available")
    optimizer = adamkit.torch.Adam([param], state_dtype="int8")
    param.grad = _sparse_grad((700, 7), [1], 0, dtype=torch.float32)
    before = snapshot(optimizer)
    with pytest.raises(TypeError, match="state_dtype='int8'"):
        optimizer.step()
    assert_unchanged(optimizer, before)


def test_a_1d_parameter_and_an_empty_gradient_follow_sparse_adam():
    """An empty gradient still counts a step, as SparseAdam counts it."""
    ours, theirs = _table((4097,), seed=20), _table((4097,), seed=20)
    optimizer = adamkit.torch.Adam([ours], lr=0.1, eps_hat=True)
    reference = torch.optim.SparseAdam([theirs], lr=0.1)
    for rows in ([5, 9, 5], [], [9, 4096]):
        grad = _sparse_grad((4097,), rows, seed=len(rows))
        ours.grad, theirs.grad = grad, grad.clone()
        optimizer.step()
        reference.step()
    assert float(optimizer.state[ours]["step"]) == reference.state[theirs]["step"] == 3
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("layout", ["non-contiguous", "fused=False"])
def test_the_reference_path_gives_the_native_bits(layout):
    values = _table((7, 17), seed=21).detach()
    native = torch.nn.Parameter(values.clone())
    other = torch.nn.Parameter(values.t().contiguous().t() if layout == "non-contiguous" else values.clone())
    fused = False if layout == "fused=False" else None
    first = _optimizer("AMSGrad", [native])
    second = _optimizer("AMSGrad", [other], fused=fused)
    for seed, rows in enumerate(SCHEDULE):
        grad = _sparse_grad((7, 17), rows, seed)
        native.grad, other.grad = grad, grad.clone()
        first.step()
        second.step()
    assert_bitwise_equal(other.detach().contiguous(), native.detach(), "param")


def test_float16_rows_take_the_dense_float16_step():
    param = _table((17, 7), dtype=torch.float16, seed=22)
    sub = torch.nn.Parameter(param.detach()[[2, 5]].clone())
    lazy, dense = _optimizer("Adam", [param]), _optimizer("Adam", [sub])
    for seed in range(3):
        grad = _sparse_grad((17, 7), [2, 5], seed, dtype=torch.float16)
        param.grad, sub.grad = grad, grad._values().clone()
        lazy.step()
        dense.step()
    assert_bitwise_equal(param.detach()[[2, 5]], sub.detach(), "touched rows")


def test_bfloat16_parameters_take_sparse_gradients_in_dense_mode():
    """A bfloat16 table's sparse gradient, densified, goes through the kernels like a dense one."""
    indices = torch.tensor([[0, 3, 3, 6]])
    values = torch.linspace(-1, 1, 4 * 5).reshape(4, 5).to(torch.bfloat16)
    start = torch.linspace(-2, 2, 7 * 5).reshape(7, 5).to(torch.bfloat16)
    results = []
    for densify in (False, True):
        param = torch.nn.Parameter(start.clone())
        optimizer = adamkit.torch.Adam([param], lr=0.1, weight_decay=0.1, sparse_mode="dense")
        for _ in range(3):
            grad = torch.sparse_coo_tensor(indices, values, (7, 5))
            param.grad = grad.to_dense() if densify else grad
            optimizer.step()
        results.append(param.detach().clone())
    assert results[0].dtype == torch.bfloat16
    assert torch.equal(results[0], results[1])
