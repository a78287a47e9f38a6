"""The torch.optim contract that adamkit.torch's optimizers honour: closures, parameters
without gradients, per-parameter step counts, parameter groups, hooks, tensor learning rates,
signatures and defaults, and the refusal of gradients it cannot use."""

import inspect

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import adamkit.torch
from tests.cases import CASES, gradients, initial_params, param_groups
from tests.torch._compare import (
    NATIVE_OPTIMIZERS,
    assert_step_refused,
    OPTIMIZERS,
    RICH,
    TOLERANCE,
    TORCH_CASES,
    Agreement,
    assert_bitwise_equal,
    assert_unchanged,
    both,
    make_params,
    set_grads,
    snapshot,
)

ADAMKIT_EXTRAS = {
    "eps_hat": False,
    "cautious": False,
    "sparse_mode": "lazy",
    "nonfinite_grads": "propagate",
    "state_dtype": None,
    "kahan_summation": None,
    "step_in_backward": False,
    "max_grad_norm": None,
}
# The optimizers with a choice of sparse step (adamkit.torch._sparse).
SPARSE_MODE_OPTIMIZERS = ("Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "NAdam", "RAdam")


# --- step(closure) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_with_closure_returns_its_loss_and_runs_it_with_grad_enabled(name):
    torch_class, adamkit_class = both(name)
    target = torch.linspace(-1, 1, 7, dtype=torch.float64)
    runs = []
    for cls in (torch_class, adamkit_class):
        param = torch.nn.Parameter(torch.zeros(7, dtype=torch.float64))
        optimizer = cls([param], **RICH[name])
        seen = []

        def closure():
            seen.append(torch.is_grad_enabled())
            optimizer.zero_grad()
            loss = ((param - target) ** 2).sum()
            loss.backward()
            return loss

        with torch.no_grad():  # step must enable grad for the closure even here
            losses = [optimizer.step(closure) for _ in range(3)]
        assert seen == [True, True, True]
        assert all(torch.is_tensor(loss) and loss.dim() == 0 for loss in losses)
        runs.append((param, losses))
    (theirs, torch_losses), (ours, adamkit_losses) = runs
    expected_losses = [loss.item() for loss in torch_losses]
    assert [loss.item() for loss in adamkit_losses] == pytest.approx(expected_losses, rel=1e-12)
    Agreement(1e-12).check("param", ours, theirs)


def test_step_without_closure_returns_none():
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3)
    assert adamkit.torch.Adam([param]).step() is None


# --- parameters without gradients, and step counts -------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_parameter_without_grad_is_not_stepped_and_counts_fewer_steps(name):
    torch_class, adamkit_class = both(name)
    arrays = initial_params("float64")
    grads = gradients("float64", steps=4)
    # Parameter 1 never has a gradient; parameter 3 has none on steps 2 and 3.
    has_grad = [[True, False, True, True]] * 2 + [[True, False, True, False]] * 2
    runs = []
    for cls in (torch_class, adamkit_class):
        params = make_params(arrays)
        optimizer = cls(params, **RICH[name])
        for step_grads, present in zip(grads, has_grad):
            for param, grad, here in zip(params, step_grads, present):
                param.grad = torch.tensor(grad) if here else None
            optimizer.step()
        runs.append((params, optimizer))
    (theirs, torch_optimizer), (ours, adamkit_optimizer) = runs

    assert_bitwise_equal(ours[1].detach(), torch.tensor(arrays[1]), "the never-stepped parameter")
    if name == "Adagrad":  # torch creates Adagrad's state eagerly, in the constructor
        assert adamkit_optimizer.state[ours[1]]["step"].item() == 0
    else:
        assert ours[1] not in adamkit_optimizer.state
    agreement = Agreement(1e-12)
    agreement.check_all("param", ours, theirs)
    agreement.check_states(adamkit_optimizer, torch_optimizer)
    if name != "SGD":
        assert adamkit_optimizer.state[ours[0]]["step"].item() == 4
        assert adamkit_optimizer.state[ours[3]]["step"].item() == 2


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if n != "SGD"])
def test_step_is_a_zero_dim_float32_cpu_tensor(name):
    _, adamkit_class = both(name)
    param = torch.nn.Parameter(torch.ones(17, dtype=torch.float64))
    optimizer = adamkit_class([param], **RICH[name])
    for count in (1, 2, 3):
        param.grad = torch.full_like(param, 0.5)
        optimizer.step()
        step = optimizer.state[param]["step"]
        assert torch.is_tensor(step) and step.dim() == 0
        assert step.dtype == torch.float32 and step.device.type == "cpu"
        assert step.item() == count


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_step_counters_loaded_in_another_dtype_keep_it_and_keep_counting(dtype):
    param = torch.nn.Parameter(torch.ones(17))
    optimizer = adamkit.torch.Adam([param])
    param.grad = torch.full_like(param, 0.5)
    optimizer.step()
    state_dict = optimizer.state_dict()
    state_dict["state"][0]["step"] = torch.tensor(5.0, dtype=dtype)
    optimizer.load_state_dict(state_dict)
    for _ in range(2):
        optimizer.step()
    step = optimizer.state[param]["step"]
    assert step.dtype == dtype and step.item() == 7


def test_sgd_keeps_no_step_count_like_torch():
    param = torch.nn.Parameter(torch.ones(7))
    param.grad = torch.ones(7)
    optimizer = adamkit.torch.SGD([param], lr=0.1, momentum=0.9)
    optimizer.step()
    assert set(optimizer.state[param]) == {"momentum_buffer"}


# --- add_param_group ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_add_param_group_matches_torch(name):
    torch_class, adamkit_class = both(name)
    arrays = initial_params("float64")
    grads = gradients("float64", steps=6)
    extra_group = {"lr": RICH[name]["lr"] * 3, "weight_decay": 0.2}
    runs = []
    for cls in (torch_class, adamkit_class):
        params = make_params(arrays)
        optimizer = cls(params[:2], **RICH[name])
        for step, step_grads in enumerate(grads):
            if step == 3:
                optimizer.add_param_group({"params": params[2:], **extra_group})
            live = params if step >= 3 else params[:2]
            set_grads(live, step_grads[: len(live)])
            optimizer.step()
        runs.append((params, optimizer))
    (theirs, torch_optimizer), (ours, adamkit_optimizer) = runs
    assert len(adamkit_optimizer.param_groups) == 2
    for key, value in torch_optimizer.param_groups[1].items():
        if key != "params":
            assert adamkit_optimizer.param_groups[1][key] == value, key
    agreement = Agreement(1e-12)
    agreement.check_all("param", ours, theirs)
    agreement.check_states(adamkit_optimizer, torch_optimizer)


@pytest.mark.parametrize(
    ("group", "error", "words"),
    [
        ({"lr": -0.1}, ValueError, ["lr", "-0.1"]),
        ({"betas": (0.9, 1.5)}, ValueError, ["betas[1]", "1.5"]),
        ({"eps": float("nan")}, ValueError, ["eps", "nan"]),
        ({"amsgrad": "yes"}, TypeError, ["amsgrad", "'yes'"]),
        ({"already_in_group_0": True}, ValueError, ["more than one parameter group"]),
    ],
    ids=[
        "negative-lr", "beta-above-one", "nan-eps", "string-flag", "param-of-another-group"
    ],
)
def test_a_bad_param_group_is_refused_and_changes_nothing(group, error, words):
    params = make_params(initial_params("float32"))
    optimizer = adamkit.torch.Adam(params[:2], lr=1e-2)
    set_grads(params[:2], gradients("float32", steps=1)[0][:2])
    optimizer.step()
    new_params = [params[2], params[3]]
    if group.pop("already_in_group_0", False):
        new_params = [params[0], params[3]]
    before = snapshot(optimizer)
    with pytest.raises(error) as raised:
        optimizer.add_param_group({"params": new_params, **group})
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"
    assert_unchanged(optimizer, before)


# --- hooks inherited from torch.optim.Optimizer -----------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_hooks_fire_before_and_after_the_update(name):
    _, adamkit_class = both(name)
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit_class([param], **RICH[name])
    seen = []
    def recorder(kind):
        return lambda opt, args, kwargs: seen.append((kind, opt, param.detach().clone()))

    optimizer.register_step_pre_hook(recorder("pre"))
    optimizer.register_step_post_hook(recorder("post"))
    global_handle = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: seen.append(("global", opt, None))
    )
    try:
        param.grad = torch.full_like(param, 0.5)
        optimizer.step()
    finally:
        global_handle.remove()
    assert [kind for kind, _, _ in seen] == ["pre", "post", "global"]
    assert all(opt is optimizer for _, opt, _ in seen)
    assert torch.equal(seen[0][2], torch.ones(7))
    assert torch.equal(seen[1][2], param.detach()) and not torch.equal(seen[1][2], torch.ones(7))


def _register(kind, hook, optimizer):
    if kind == "pre":
        return optimizer.register_step_pre_hook(hook)
    if kind == "post":
        return optimizer.register_step_post_hook(hook)
    if kind == "global-pre":
        return register_optimizer_step_pre_hook(hook)
    return register_optimizer_step_post_hook(hook)


@pytest.mark.parametrize("kind", ["pre", "post", "global-pre", "global-post"])
def test_each_kind_of_step_hook_fires_on_its_own(kind):
    """adamkit calls step without torch's hook wrapper unless a hook or a profiler needs it."""
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.Adam([param], lr=0.1)
    seen = []
    handle = _register(kind, lambda opt, args, kwargs: seen.append(opt), optimizer)
    try:
        param.grad = torch.full_like(param, 0.5)
        optimizer.step()
    finally:
        handle.remove()
    assert seen == [optimizer]
    optimizer.step()
    assert seen == [optimizer]


def test_a_pre_hook_can_replace_the_steps_arguments():
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.Adam([param], lr=0.1)
    param.grad = torch.full_like(param, 0.5)
    closure_calls = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: ((opt,), {"closure": lambda: closure_calls.append(1) or 3.0}))
    assert optimizer.step() == 3.0 and closure_calls == [1]


def test_the_profiler_sees_the_step_range():
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.Adam([param], lr=0.1)
    param.grad = torch.full_like(param, 0.5)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        optimizer.step()
    assert "Optimizer.step#Adam.step" in {event.name for event in profile.events()}


@pytest.mark.parametrize("hooks_known", [True, False])
def test_torchs_wrapper_runs_only_when_needed(monkeypatch, hooks_known):
    """Without hooks or a profiler the step skips torch's wrapper (and its profiler range);
    if torch's hook registries cannot be found, every step takes the wrapper."""
    from adamkit.torch import _step_wrapper

    ranges = []

    class RecordFunction:
        def __init__(self, name):
            ranges.append(name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.autograd.profiler, "record_function", RecordFunction)
    monkeypatch.setattr(_step_wrapper, "_HOOKS_KNOWN", hooks_known)
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.Adam([param], lr=0.1)
    param.grad = torch.full_like(param, 0.5)
    optimizer.step()
    assert ranges == ([] if hooks_known else ["Optimizer.step#Adam.step"])
    assert not torch.equal(param.detach(), torch.ones(7))


def test_the_step_runs_without_autograd_and_restores_the_grad_mode():
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.Adam([param], lr=0.1)
    modes = []

    def closure():
        modes.append(torch.is_grad_enabled())  # the closure runs with autograd on
        return 1.0

    param.grad = torch.full_like(param, 0.5)
    with torch.no_grad():
        optimizer.step(closure)
        assert not torch.is_grad_enabled()
    optimizer.step(closure)
    assert torch.is_grad_enabled() and modes == [True, True]
    optimizer.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        optimizer.step()
    assert torch.is_grad_enabled()


def test_state_dict_hooks_fire_and_can_edit_the_state_dict():
    param = torch.nn.Parameter(torch.ones(7))
    param.grad = torch.full_like(param, 0.5)
    optimizer = adamkit.torch.AdamW([param], lr=0.1)
    optimizer.step()
    calls = []
    optimizer.register_state_dict_pre_hook(lambda opt: calls.append("pre"))

    def tag(opt, state_dict):
        calls.append("post")
        state_dict["tag"] = "saved by adamkit"
        return state_dict

    optimizer.register_state_dict_post_hook(tag)
    state_dict = optimizer.state_dict()
    assert calls == ["pre", "post"] and state_dict["tag"] == "saved by adamkit"

    def halve_lr(opt, state_dict):
        calls.append("load-pre")
        state_dict = dict(state_dict)
        state_dict.pop("tag")
        state_dict["param_groups"] = [dict(g, lr=g["lr"] / 2) for g in state_dict["param_groups"]]
        return state_dict

    optimizer.register_load_state_dict_pre_hook(halve_lr)
    optimizer.register_load_state_dict_post_hook(lambda opt: calls.append("load-post"))
    optimizer.load_state_dict(state_dict)
    assert calls[2:] == ["load-pre", "load-post"]
    assert optimizer.param_groups[0]["lr"] == 0.05


# --- tensor learning rates ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_tensor_lr_works_and_equals_the_float_lr(name, dtype):
    torch_class, adamkit_class = both(name)
    numpy_dtype = str(dtype).removeprefix("torch.")
    arrays = initial_params(numpy_dtype)
    hyper = {key: value for key, value in RICH[name].items() if key != "lr"}
    runs = {}
    for label, cls, lr in [
        ("torch, float lr", torch_class, 0.01),
        ("adamkit, tensor lr", adamkit_class, torch.tensor(0.01, dtype=dtype)),
        ("torch, tensor lr", torch_class, torch.tensor(0.01, dtype=dtype)),
    ]:
        params = make_params(arrays)
        optimizer = cls(params, lr=lr, **hyper)
        for step_grads in gradients(numpy_dtype, steps=10):
            set_grads(params, step_grads)
            optimizer.step()
        runs[label] = (params, optimizer)
    ours, adamkit_optimizer = runs["adamkit, tensor lr"]
    assert torch.is_tensor(adamkit_optimizer.param_groups[0]["lr"])
    Agreement(TOLERANCE[dtype]).check_all("param", ours, runs["torch, float lr"][0])
    Agreement(TOLERANCE[dtype]).check_all("param", ours, runs["torch, tensor lr"][0])


# --- steps that must change nothing ----------------------------------------------------------


def _zero_lr_optimizer(cls, case, params):
    """``case``'s optimizer with ``lr = 0`` in both groups."""
    groups = param_groups(case, params)
    groups[1]["lr"] = 0.0
    return cls(groups, **{**case.hyper, "lr": 0.0})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_zero_grads_and_zero_lr_leave_params_bitwise_unchanged(case, dtype):
    adamkit_class = getattr(adamkit.torch, case.optimizer)
    arrays = initial_params(dtype)
    params = make_params(arrays)
    optimizer = _zero_lr_optimizer(adamkit_class, case, params)
    for _ in range(2):
        set_grads(params, [np.zeros_like(a) for a in arrays])
        optimizer.step()
    for index, (param, array) in enumerate(zip(params, arrays)):
        assert_bitwise_equal(param.detach(), torch.tensor(array), f"param[{index}]")


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_zero_step_treats_signed_zeros_like_torch(case):
    """With maximize and weight decay, torch itself turns -0.0 into +0.0 (−0 − (−0) = +0)."""
    torch_class, adamkit_class = both(case.optimizer)
    if torch_class is None:
        pytest.skip(f"torch.optim has no {case.optimizer}")
    arrays = initial_params("float64")
    arrays[1][:2] = [0.0, -0.0]
    results = []
    for cls in (torch_class, adamkit_class):
        params = make_params(arrays)
        optimizer = _zero_lr_optimizer(cls, case, params)
        set_grads(params, [np.zeros_like(a) for a in arrays])
        optimizer.step()
        results.append(params)
    for index, (ours, theirs) in enumerate(zip(results[1], results[0])):
        assert_bitwise_equal(ours.detach(), theirs.detach(), f"param[{index}]")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_gradients_are_never_modified(case):
    adamkit_class = getattr(adamkit.torch, case.optimizer)
    params = make_params(initial_params("float32"))
    optimizer = adamkit_class(param_groups(case, params), **case.hyper)
    for step_grads in gradients("float32", steps=3):
        set_grads(params, step_grads)
        optimizer.step()
        for index, (param, grad) in enumerate(zip(params, step_grads)):
            assert_bitwise_equal(param.grad, torch.tensor(grad), f"grad[{index}]")


# --- gradients that cannot be used -------------------------------------------------------------


def _malformed_sparse(param):
    """A sparse COO gradient one element longer than its parameter."""
    return torch.sparse_coo_tensor(torch.tensor([[0]]), torch.zeros(1, dtype=param.dtype), (param.numel() + 1,), check_invariants=False)


def _wrong_dtype(param):
    return torch.zeros(param.shape, dtype=torch.float64)


def _wrong_shape(param):
    return torch.zeros(param.numel() + 1, dtype=param.dtype)


@pytest.mark.parametrize(
    ("make_grad", "error", "words"),
    [
        (_malformed_sparse, ValueError, ["sparse", "(4098,)", "(4097,)", "param_groups[1]['params'][1]"]),
        (_wrong_dtype, ValueError, ["torch.float64", "torch.float32", "param_groups[1]['params'][1]"]),
        (_wrong_shape, ValueError, ["(4098,)", "(4097,)", "param_groups[1]['params'][1]"]),
    ],
    ids=["malformed-sparse", "wrong-dtype", "wrong-shape"],
)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_an_unusable_grad_raises_and_changes_nothing(name, make_grad, error, words):
    _, adamkit_class = both(name)
    case = next(c for c in CASES if c.optimizer == name)
    params = make_params(initial_params("float32"))
    optimizer = adamkit_class(param_groups(case, params), **RICH[name])
    all_grads = gradients("float32", steps=2)
    set_grads(params, all_grads[0])
    optimizer.step()
    set_grads(params, all_grads[1])
    # The last parameter of the last group gets the bad gradient, after the others are checked.
    bad = make_grad(params[3])
    if bad.is_sparse:
        params[3].grad = torch.zeros_like(params[3]).to_sparse()  # a well-formed sparse gradient
        if name in ("RMSprop", "Adafactor"):  # which have no sparse step, whatever the gradient's shape
            error, words = TypeError, [f"{name} does not support sparse gradients", "param_groups[1]['params'][1]"]
    params[3].grad.data = bad  # torch's grad setter refuses other dtypes and shapes
    assert_step_refused(optimizer, error, words)


# --- signatures and defaults -------------------------------------------------------------------


def _described(signature):
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_signature_equals_torchs_apart_from_the_documented_opt_ins(name):
    torch_class, adamkit_class = both(name)
    ours = inspect.signature(adamkit_class)
    theirs = inspect.signature(torch_class)
    extras = [p for p in ours.parameters.values() if p.name in ADAMKIT_EXTRAS]
    for extra in extras:
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY, extra.name
        assert extra.default == ADAMKIT_EXTRAS[extra.name], extra.name
    assert {"nonfinite_grads", "step_in_backward", "max_grad_norm"} <= {p.name for p in extras}
    # Kahan summation needs the C kernels: a class whose rule has none does not take it.
    assert ("kahan_summation" in {p.name for p in extras}) == (name in NATIVE_OPTIMIZERS)
    assert ("sparse_mode" in [p.name for p in extras]) == (name in SPARSE_MODE_OPTIMIZERS)
    shared = ours.replace(parameters=[p for p in ours.parameters.values() if p.name not in ADAMKIT_EXTRAS])
    assert _described(shared) == _described(theirs)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_defaults_equal_torchs(name):
    torch_class, adamkit_class = both(name)
    ours = adamkit_class([torch.nn.Parameter(torch.ones(1))]).defaults
    theirs = torch_class([torch.nn.Parameter(torch.ones(1))]).defaults
    for key, value in theirs.items():
        assert key in ours and ours[key] == value and type(ours[key]) is type(value), key
    assert set(ours) - set(theirs) <= {"eps_hat", "cautious", "sparse_mode"}
    assert ours.get("sparse_mode") == ("lazy" if name in SPARSE_MODE_OPTIMIZERS else None)


def test_adamkit_torch_has_one_class_per_spec_in_the_specs_order():
    from adamkit import specs

    assert [name for name in adamkit.torch.__all__ if name in specs.BY_NAME] == [spec.name for spec in specs.ALL]
    for spec in specs.ALL:
        assert getattr(adamkit.torch, spec.name).spec is spec


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas", [(0, 0.9), (0.9, 0)])
def test_int_betas_raise_value_error_as_torch_does(name, betas):
    params = [torch.nn.Parameter(torch.ones(3))]
    with pytest.raises(ValueError, match="both floats or both Tensors"):
        getattr(torch.optim, name)(params, betas=betas)
    with pytest.raises(ValueError, match=r"both floats or both Tensors, got \("):
        getattr(adamkit.torch, name)(params, betas=betas)
