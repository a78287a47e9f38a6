"""``step_in_backward=True`` (:mod:`adamkit.torch._in_backward`): training with it is training
without it, bit for bit, for every class and state layout; gradients are freed as backward
goes; accumulation, per-tensor clipping, schedulers, checkpoints and copies work; what cannot
work is refused with a precise error."""

import copy
import gc
import pickle
import weakref

import pytest
import torch

import adamkit.torch
from tests.torch._compare import RICH, assert_bitwise_equal

# SparseAdam steps sparse gradients (tested below); AdamWScheduleFree refuses the option (below).
CLASSES = tuple(
    name
    for name in adamkit.torch.__all__
    if name not in ("MismatchError", "Optimizer", "SparseAdam", "AdamWScheduleFree")
)
HYPER = {
    **RICH,
    "AdaBelief": dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.05, amsgrad=True, rectify=True),
    "Lion": dict(lr=1e-3, betas=(0.85, 0.97), weight_decay=0.1),
    "AdEMAMix": dict(lr=1e-2, betas=(0.8, 0.99, 0.999), t_alpha_beta3=4, weight_decay=0.1),
    "LAMB": dict(lr=1e-2, weight_decay=0.1, trust_clip=5.0),
}
SIZES = ((1,), (7,), (17,), (4097,), (5, 3))
STEPS = 3


def _params(dtype=torch.float32, sizes=SIZES):
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(size, generator=generator).to(dtype)) for size in sizes]


def _groups(params, name):
    """Two groups, the second with its own learning rate."""
    lr = HYPER.get(name, {}).get("lr", 1e-2)
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr / 3}]


def _loss(params, seed):
    generator = torch.Generator().manual_seed(seed)
    return sum((p.float() * torch.randn(p.shape, generator=generator)).sin().sum() for p in params)


def _train(cls, options, in_backward, dtype=torch.float32, steps=STEPS, micro=1):
    """``steps`` steps, each over ``micro`` backward passes (accumulated under accumulating())."""
    params = _params(dtype)
    optimizer = cls(_groups(params, cls.__name__), **options, step_in_backward=in_backward)
    for step in range(steps):
        optimizer.zero_grad()
        for batch in range(micro):
            last = batch == micro - 1
            if in_backward and not last:
                with optimizer.accumulating():
                    _loss(params, 10 * step + batch).backward()
            else:
                _loss(params, 10 * step + batch).backward()
        optimizer.step()
    return params, optimizer


def _assert_same(ours, theirs):
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert_bitwise_equal(a, b, f"param {index}")


def _assert_same_state(ours, theirs):
    def states(optimizer):
        return [optimizer.state[p] for group in optimizer.param_groups for p in group["params"]]

    for state_a, state_b in zip(states(ours), states(theirs), strict=True):
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            if torch.is_tensor(state_a[key]):
                assert_bitwise_equal(state_a[key], state_b[key], key)


@pytest.mark.parametrize("name", CLASSES)
def test_stepping_in_backward_equals_stepping_after_it_bit_for_bit(name):
    cls = getattr(adamkit.torch, name)
    expected, reference = _train(cls, HYPER.get(name, {}), in_backward=False)
    actual, optimizer = _train(cls, HYPER.get(name, {}), in_backward=True)
    _assert_same(actual, expected)
    _assert_same_state(optimizer, reference)
    assert all(p.grad is None for p in actual)


@pytest.mark.parametrize(
    ("name", "options", "dtype"),
    [
        ("Adam", dict(lr=1e-2, state_dtype="int8"), torch.float32),
        ("LAMB", dict(lr=1e-2, weight_decay=0.1), torch.bfloat16),
        ("AdamW", dict(lr=1e-2, state_dtype="bf16"), torch.float32),
        ("AdamW", dict(lr=1e-2, weight_decay=0.1), torch.bfloat16),
        ("Lion", dict(lr=1e-3), torch.bfloat16),
        ("Adam", dict(lr=1e-2, foreach=True), torch.float32),
        ("SGD", dict(lr=1e-2, momentum=0.9, fused=False), torch.float64),
    ],
)
def test_compact_state_kahan_and_torchs_paths_step_in_backward_bit_for_bit(name, options, dtype):
    cls = getattr(adamkit.torch, name)
    expected, reference = _train(cls, options, in_backward=False, dtype=dtype)
    actual, optimizer = _train(cls, options, in_backward=True, dtype=dtype)
    _assert_same(actual, expected)
    _assert_same_state(optimizer, reference)


def test_bfloat16_state_seeds_its_rounding_by_position_so_alone_each_parameter_is_the_first():
    """Stochastic rounding is seeded by the step and the parameter's position among those
    stepped together; stepped alone in backward, each is at position 0. The run is still
    reproducible, and the first parameter of each group gets the bits it gets without the option."""

    def train(in_backward):
        params = [torch.nn.Parameter(torch.full((4097,), 0.5 + i)) for i in range(2)]
        optimizer = adamkit.torch.AdamW(params, lr=1e-2, state_dtype="bf16", step_in_backward=in_backward)
        for step in range(STEPS):
            _loss(params, step).backward()
            optimizer.step()
            optimizer.zero_grad()
        return params

    after, in_backward = train(False), train(True)
    _assert_same(in_backward, train(True))
    assert_bitwise_equal(in_backward[0], after[0])
    assert not torch.equal(in_backward[1], after[1])
    torch.testing.assert_close(in_backward[1], after[1], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["AdamW", "LAMB", "Adagrad"])
def test_accumulating_over_micro_batches_equals_one_step_on_their_summed_gradient(name):
    cls = getattr(adamkit.torch, name)
    expected, _ = _train(cls, HYPER[name], in_backward=False, micro=3)
    actual, _ = _train(cls, HYPER[name], in_backward=True, micro=3)
    _assert_same(actual, expected)


def test_accumulated_gradients_stay_until_the_backward_after_the_block():
    params = _params()
    optimizer = adamkit.torch.Adam(params, lr=0.1, step_in_backward=True)
    before = [p.detach().clone() for p in params]
    with optimizer.accumulating():
        _loss(params, 0).backward()
        _loss(params, 1).backward()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(p.grad is not None for p in params)
    _loss(params, 2).backward()
    assert not any(torch.equal(p, b) for p, b in zip(params, before))
    assert all(p.grad is None for p in params)


def test_no_full_set_of_gradients_is_alive_during_backward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(17, 17) for _ in range(6)])
    params = list(model.parameters())
    optimizer = adamkit.torch.AdamW(model.parameters(), lr=1e-3, step_in_backward=True)
    live = []
    for param in params:  # registered after the optimizer's hook: runs after its step
        param.register_post_accumulate_grad_hook(lambda _: live.append(sum(p.grad is not None for p in params)))
    for _ in range(2):
        model(torch.randn(4, 17)).square().sum().backward()
        optimizer.step()
        assert len(live) == len(params) and max(live) == 0
        live.clear()
    assert optimizer.state[params[0]]["step"] == 2


def test_max_grad_norm_clips_each_gradient_as_clip_grad_norm_on_that_tensor():
    expected = _params()
    reference = adamkit.torch.Adam(expected, lr=0.1)
    actual = _params()
    optimizer = adamkit.torch.Adam(actual, lr=0.1, step_in_backward=True, max_grad_norm=0.5)
    for step in range(STEPS):
        _loss(expected, step).backward()
        for param in expected:
            torch.nn.utils.clip_grad_norm_(param, 0.5)
        reference.step()
        reference.zero_grad()
        _loss(actual, step).backward()
    _assert_same(actual, expected)
    assert optimizer.state[actual[0]]["step"] == STEPS
    # After such a backward there is nothing for a global norm: torch returns 0 for no gradients.
    assert torch.nn.utils.clip_grad_norm_(actual, 1.0) == 0


def test_a_scheduler_sets_the_lr_of_the_next_backwards_steps():
    runs = []
    for in_backward in (False, True):
        params = _params()
        optimizer = adamkit.torch.Adam(params, lr=0.1, step_in_backward=in_backward)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        for step in range(STEPS):
            _loss(params, step).backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
        runs.append(params)
    _assert_same(runs[1], runs[0])


def test_step_with_a_closure_returns_its_loss_and_steps_once():
    params = _params()
    optimizer = adamkit.torch.Adam(params, lr=0.1, step_in_backward=True)

    def closure():
        optimizer.zero_grad()
        loss = _loss(params, 0)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert torch.is_tensor(loss)
    assert all(optimizer.state[p]["step"] == 1 for p in params)


def test_step_steps_gradients_set_by_hand():
    params = _params(sizes=((7,),))
    optimizer = adamkit.torch.Adam(params, lr=0.1, step_in_backward=True)
    params[0].grad = torch.ones(7)
    optimizer.step()
    assert optimizer.state[params[0]]["step"] == 1


def test_a_checkpoint_resumes_bit_for_bit_and_copies_step_in_backward():
    expected, _ = _train(adamkit.torch.AdamW, HYPER["AdamW"], in_backward=True, steps=4)
    params, optimizer = _train(adamkit.torch.AdamW, HYPER["AdamW"], in_backward=True, steps=2)
    saved = copy.deepcopy(optimizer.state_dict())
    resumed_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = adamkit.torch.AdamW(_groups(resumed_params, "AdamW"), step_in_backward=True)
    resumed.load_state_dict(saved)
    for step in (2, 3):
        _loss(resumed_params, 10 * step).backward()
    _assert_same(resumed_params, expected)
    for copied in (copy.deepcopy(resumed), pickle.loads(pickle.dumps(resumed))):
        assert copied.step_in_backward
        copied_params = [p for group in copied.param_groups for p in group["params"]]
        before = [p.detach().clone() for p in copied_params]
        _loss(copied_params, 0).backward()
        assert all(p.grad is None for p in copied_params)
        assert not any(torch.equal(p, b) for p, b in zip(copied_params, before))


def test_a_shallow_copy_would_step_the_same_parameters_twice_and_is_refused():
    optimizer = adamkit.torch.Adam(_params(), step_in_backward=True)
    with pytest.raises(ValueError, match="is already stepped in backward by another optimizer"):
        copy.copy(optimizer)


def test_hooks_follow_add_param_group_and_leave_with_the_optimizer():
    first, second = _params(sizes=((3,),)), _params(sizes=((4,),))
    optimizer = adamkit.torch.Adam(first, lr=0.1, step_in_backward=True)
    optimizer.add_param_group({"params": second, "lr": 0.2})
    _loss(first + second, 0).backward()
    assert all(p.grad is None for p in first + second)
    assert optimizer.state[second[0]]["step"] == 1
    gone = weakref.ref(optimizer)
    del optimizer
    gc.collect()
    assert gone() is None
    _loss(first + second, 1).backward()  # no hook left: the gradients stay
    assert all(p.grad is not None for p in first + second)
    adamkit.torch.Adam(first, step_in_backward=True)  # the parameters are free again


def test_sparse_gradients_step_in_backward_as_after_it():
    runs = []
    for in_backward in (False, True):
        torch.manual_seed(0)
        embedding = torch.nn.Embedding(17, 3, sparse=True)
        optimizer = adamkit.torch.SparseAdam(embedding.parameters(), lr=0.1, step_in_backward=in_backward)
        for step in range(STEPS):
            embedding(torch.tensor([step, 5, 5, 16])).sin().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        runs.append(embedding.weight)
    assert_bitwise_equal(runs[1], runs[0])


# --- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        (dict(nonfinite_grads="skip"), ValueError, "nonfinite_grads='skip' cannot be used with step_in_backward"),
        (dict(differentiable=True), ValueError, "differentiable=True cannot be used with step_in_backward"),
        (dict(capturable=True), ValueError, "capturable=True cannot be used with step_in_backward"),
        (dict(step_in_backward=1), TypeError, "step_in_backward must be True or False, got 1"),
        (dict(max_grad_norm=0.0), ValueError, "Invalid max_grad_norm: 0.0"),
        (dict(max_grad_norm=float("inf")), ValueError, "Invalid max_grad_norm: inf"),
    ],
)
def test_what_cannot_step_in_backward_is_refused_at_construction(options, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        adamkit.torch.Adam(_params(), **{"step_in_backward": True, **options})


def test_schedule_free_whose_group_advances_once_per_step_is_refused():
    params = _params()
    with pytest.raises(ValueError, match="cannot be used with AdamWScheduleFree: its group advances once per step"):
        adamkit.torch.AdamWScheduleFree(params, step_in_backward=True)
    assert all(param._post_accumulate_grad_hooks is None for param in params)


def test_max_grad_norm_without_step_in_backward_is_refused():
    with pytest.raises(ValueError, match="max_grad_norm=1.0 clips each gradient before its step in backward"):
        adamkit.torch.Adam(_params(), max_grad_norm=1.0)


def test_a_parameter_listed_twice_or_already_stepped_in_backward_is_refused():
    params = _params(sizes=((3,), (4,)))
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[2\] is listed twice"):
        adamkit.torch.Adam([params[0], params[1], params[0]], step_in_backward=True)
    first = adamkit.torch.Adam(params[:1], step_in_backward=True)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\] is already stepped in backward by"):
        adamkit.torch.SGD(params[::-1], lr=0.1, step_in_backward=True)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: differentiable=True cannot"):
        first.add_param_group({"params": params[1:], "differentiable": True})
    assert len(first.param_groups) == 1


def test_step_under_accumulating_and_accumulating_without_the_option_raise():
    params = _params()
    optimizer = adamkit.torch.Adam(params, step_in_backward=True)
    with optimizer.accumulating(), pytest.raises(RuntimeError, match="step\\(\\) was called under accumulating"):
        optimizer.step()
    with pytest.raises(RuntimeError, match="accumulating\\(\\) needs step_in_backward=True"):
        with adamkit.torch.Adam(params).accumulating():
            pass


def test_grad_scaler_step_raises_adamkits_error():
    params = _params()
    optimizer = adamkit.torch.Adam(params, step_in_backward=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale(_loss(params, 0)).backward()
    with pytest.raises(RuntimeError, match="GradScaler cannot drive an optimizer with step_in_backward=True"):
        scaler.step(optimizer)
    params[0].grad = torch.ones_like(params[0])
    optimizer.step()  # without the scaler, the optimizer steps on
    assert optimizer.state[params[0]]["step"] == 2


def test_a_bad_gradient_is_named_by_its_index_in_its_group():
    params = _params(sizes=((3,), (4,)))
    optimizer = adamkit.torch.Adam([{"params": params}], step_in_backward=True)
    optimizer.state[params[1]]["step"] = torch.tensor(-1.0)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\]: state\['step'\] is"):
        _loss(params, 0).backward()
