"""torch's implementation flags (``foreach``, ``fused``, ``capturable``, ``differentiable``)
mean what they mean in torch: where adamkit's kernels do not serve, the step is torch's own
implementation with the same flags, so the results are bitwise torch.optim's
(:mod:`adamkit.torch._torch_step`).

Tensors on another device are simulated with CPU tensors through the test-only switch
``_backend.on_kernel_device``; torch then runs its implementation for the CPU, as torch.optim
does with the same flags."""

import copy
import re

import pytest
import torch

import adamkit.torch
from adamkit.torch import _backend
from adamkit.nonfinite import NonFiniteGradientWarning
from tests.torch._compare import both

SIZES = (1, 7, 17, 4097)
FUSED = ("Adam", "AdamW", "SGD", "Adagrad")
CAPTURABLE = ("Adam", "AdamW", "Adamax", "Adadelta", "RMSprop", "NAdam", "RAdam")

# Non-default hyperparameters of each class, with every state slot in use.
CASES = (
    ("Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=3e-3, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=3e-3, weight_decay=0.05, amsgrad=True)),
    ("Adamax", dict(lr=4e-3, betas=(0.85, 0.995), weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=1e-2, momentum=0.5, dampening=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, centered=True, momentum=0.9, weight_decay=0.1)),
    ("NAdam", dict(lr=4e-3, betas=(0.85, 0.995), momentum_decay=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, decoupled_weight_decay=True)),
)
IDS = [f"{name}{hyper}" for name, hyper in CASES]


def _groups(params, second_lr):
    """Three groups: the second with another lr, the third with no weight decay."""
    return [{"params": params[:1]}, {"params": params[1:3], "lr": second_lr}, {"params": params[3:], "weight_decay": 0.0}]


def _run(cls, hyper, flags, steps=5, dtype=torch.float32):
    generator = torch.Generator().manual_seed(7)
    params = [torch.nn.Parameter(torch.randn(size, generator=generator, dtype=dtype)) for size in SIZES]
    optimizer = cls(_groups(params, hyper["lr"] / 2), **hyper, **flags)
    for _ in range(steps):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator, dtype=dtype)
        optimizer.step()
    return params, optimizer


def _assert_equal_runs(ours, theirs):
    (ours_params, ours_optimizer), (their_params, their_optimizer) = ours, theirs
    for index, (got, want) in enumerate(zip(ours_params, their_params)):
        assert torch.equal(got, want), f"params[{index}]"
        got_state, want_state = ours_optimizer.state[got], their_optimizer.state[want]
        assert got_state.keys() == want_state.keys()
        for key, value in want_state.items():
            assert torch.equal(got_state[key], value), f"params[{index}] state[{key!r}]"
            assert got_state[key].device == value.device and got_state[key].dtype == value.dtype, key


def _flag_sets(name):
    """torch's implementations other than its default: foreach and, where the class has one,
    fused (differentiable=True, which takes non-leaf parameters, has its own tests below)."""
    sets = [dict(foreach=True)]
    return sets + ([dict(foreach=True, fused=False), dict(fused=True)] if name in FUSED else [])


@pytest.mark.parametrize(("name", "hyper"), CASES, ids=IDS)
def test_torch_flags_on_the_cpu_are_torchs_implementation_bit_for_bit(name, hyper):
    torch_class, adamkit_class = both(name)
    for flags in _flag_sets(name):
        if flags == dict(fused=True):
            continue  # on the CPU fused=True is adamkit's kernels
        _assert_equal_runs(_run(adamkit_class, hyper, flags), _run(torch_class, hyper, flags))


@pytest.mark.parametrize(("name", "hyper"), CASES, ids=IDS)
def test_off_the_kernel_device_the_step_is_torchs_with_the_same_flags(name, hyper, monkeypatch):
    torch_class, adamkit_class = both(name)
    monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    for flags in [{}, dict(foreach=False), dict(fused=False)] + _flag_sets(name):
        if "fused" in flags and name not in FUSED:
            continue  # torch's class has no fused argument
        _assert_equal_runs(_run(adamkit_class, hyper, flags), _run(torch_class, hyper, flags))


@pytest.mark.parametrize("name", ("Adam", "SGD"))
def test_off_the_kernel_device_the_step_is_torchs_for_float16_too(name, monkeypatch):
    torch_class, adamkit_class = both(name)
    monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    hyper = dict(lr=1e-2, weight_decay=0.1)
    for flags in ({}, dict(foreach=True)):
        _assert_equal_runs(_run(adamkit_class, hyper, flags, dtype=torch.float16), _run(torch_class, hyper, flags, dtype=torch.float16))


class _Model(torch.nn.Module):
    """A small CNN feeding a transformer encoder layer: convolutions, linear layers, layer norms."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.embed = torch.nn.Linear(8, 16)
        self.encoder = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(16, 5)

    def forward(self, images):
        features = torch.relu(self.conv(images)).flatten(2).transpose(1, 2)
        return self.head(self.encoder(self.embed(features)).mean(1))


def _model_groups(model):
    """Weights with weight decay, biases and norms without, the head at a lower lr."""
    decayed, plain, head = [], [], []
    for name, param in model.named_parameters():
        (head if name.startswith("head") else decayed if param.dim() > 1 else plain).append(param)
    return [{"params": decayed, "weight_decay": 0.02}, {"params": plain, "weight_decay": 0.0}, {"params": head}]


MODEL_CASES = (
    ("Adam", dict(lr=1e-3)),
    ("AdamW", dict(lr=1e-3, amsgrad=True)),
    ("Adamax", dict(lr=2e-3)),
    ("Adadelta", dict(lr=0.5)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr=1e-2, lr_decay=1e-3)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True)),
    ("RAdam", dict(lr=1e-3)),
)


def _train(cls, hyper, model, steps=20):
    torch.manual_seed(11)
    optimizer = cls(_model_groups(model), **hyper, foreach=True)
    optimizer.param_groups[2]["lr"] = hyper["lr"] / 3
    losses = []
    for _ in range(steps):
        images, labels = torch.randn(4, 3, 6, 6), torch.randint(0, 5, (4,))
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses, optimizer


@pytest.mark.parametrize(("name", "hyper"), MODEL_CASES, ids=[name for name, _ in MODEL_CASES])
def test_foreach_trains_a_model_bitwise_as_torch_foreach_for_20_steps(name, hyper):
    torch.manual_seed(0)
    model = _Model()
    twin = copy.deepcopy(model)
    torch_class, adamkit_class = both(name)
    ours, ours_optimizer = _train(adamkit_class, hyper, model)
    theirs, their_optimizer = _train(torch_class, hyper, twin)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert ours[-1] != ours[0]
    for (key, got), want in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(got, want), key
        for slot, value in their_optimizer.state[want].items():
            assert torch.equal(ours_optimizer.state[got][slot], value), (key, slot)


DIFFERENTIABLE_CASES = (
    ("Adam", dict(weight_decay=0.1, amsgrad=True), ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    ("AdamW", dict(weight_decay=0.1), ("exp_avg", "exp_avg_sq")),
    ("Adamax", dict(weight_decay=0.1), ("exp_avg", "exp_inf")),
    ("Adadelta", dict(rho=0.8, weight_decay=0.1), ("square_avg", "acc_delta")),
    ("SGD", dict(momentum=0.9, nesterov=True, weight_decay=0.1), ("momentum_buffer",)),
    ("Adagrad", dict(lr_decay=0.01, weight_decay=0.1), ("sum",)),
    ("RMSprop", dict(centered=True, momentum=0.9, weight_decay=0.1), ("square_avg", "momentum_buffer", "grad_avg")),
    ("NAdam", dict(weight_decay=0.1, momentum_decay=0.05), ("exp_avg", "exp_avg_sq")),
    ("RAdam", dict(weight_decay=0.1), ("exp_avg", "exp_avg_sq")),
)


# The classes whose differentiable for-loop in torch takes a tensor learning rate.
TENSOR_LR = ("Adam", "AdamW", "SGD")


def name_counts_steps(cls):
    return cls.__name__ != "SGD"


def _differentiated_step(cls, hyper, slots):
    """One differentiable step of a non-leaf parameter from given state, as torch's own
    differentiable tests take it; returns the gradients of a weighted sum of the outputs with
    respect to the parameter, its gradient, its state and (where torch's differentiable
    for-loop takes a tensor learning rate) the learning rate."""
    generator = torch.Generator().manual_seed(5)
    start = torch.randn(17, generator=generator, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(17, generator=generator, dtype=torch.float64, requires_grad=True)
    # Positive averages, and a centered RMSprop's grad_avg small beside its square_avg.
    scales = {key: (0.1, 0.0) if key == "grad_avg" else (1.0, 0.5) for key in slots}
    state = {
        key: (torch.rand(17, generator=generator, dtype=torch.float64) * scale + offset).requires_grad_()
        for key, (scale, offset) in scales.items()
    }
    tensor_lr = cls.__name__ in TENSOR_LR
    lr = torch.tensor(0.01, dtype=torch.float64, requires_grad=True) if tensor_lr else 0.01
    param = start.clone()
    param.grad = grad
    optimizer = cls([param], lr=lr, **hyper, differentiable=True)
    optimizer.state[param].update({key: value.clone() for key, value in state.items()})
    if name_counts_steps(cls):
        optimizer.state[param]["step"] = torch.tensor(3.0, dtype=torch.float64)
    for slot in getattr(adamkit.torch, cls.__name__).spec.scalar_state:  # NAdam's mu_product
        optimizer.state[param][slot.key] = torch.tensor(0.1, dtype=torch.float64)
    optimizer.step()
    outputs = [param] + [optimizer.state[param][key] for key in slots]
    total = sum((output * (index + 1)).sum() for index, output in enumerate(outputs))
    inputs = [start, grad, *state.values()] + ([lr] if tensor_lr else [])
    return [*outputs, *torch.autograd.grad(total, inputs)]


@pytest.mark.parametrize(("name", "hyper", "slots"), DIFFERENTIABLE_CASES, ids=[c[0] for c in DIFFERENTIABLE_CASES])
def test_differentiable_gradients_flow_through_the_step_as_through_torchs(name, hyper, slots):
    torch_class, adamkit_class = both(name)
    ours = _differentiated_step(adamkit_class, hyper, slots)
    theirs = _differentiated_step(torch_class, hyper, slots)
    for index, (got, want) in enumerate(zip(ours, theirs)):
        assert torch.equal(got, want), index
    assert ours[-1].abs().sum() > 0  # gradients flowed through the step


def test_differentiable_steps_pass_torchs_gradcheck():
    def step(param, grad, exp_avg, exp_avg_sq):
        param = param.clone()
        param.grad = grad
        optimizer = adamkit.torch.Adam([param], lr=0.1, weight_decay=0.1, differentiable=True)
        optimizer.state[param].update(step=torch.tensor(2.0), exp_avg=exp_avg.clone(), exp_avg_sq=exp_avg_sq.clone())
        optimizer.step()
        return param, optimizer.state[param]["exp_avg"], optimizer.state[param]["exp_avg_sq"]

    generator = torch.Generator().manual_seed(2)
    inputs = [torch.rand(7, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(step, inputs)


def test_without_differentiable_the_step_is_not_recorded():
    param = torch.nn.Parameter(torch.ones(7))
    param.grad = torch.ones(7)
    optimizer = adamkit.torch.Adam([param], foreach=True)
    optimizer.step()
    assert param.grad_fn is None and not optimizer.state[param]["exp_avg"].requires_grad


OWN_OPTIONS = (
    ("Adam", dict(eps_hat=True), "eps_hat=True"),
    ("AdamW", dict(state_dtype="int8"), "state_dtype='int8'"),
    ("Adamax", dict(state_dtype="bf16"), "state_dtype='bf16'"),
    ("Adadelta", dict(sparse_mode="dense"), "sparse_mode='dense'"),
    ("SGD", dict(state_dtype="fp32"), "state_dtype='fp32'"),
    ("Adagrad", dict(kahan_summation=True), "kahan_summation=True"),
    ("RMSprop", dict(kahan_summation=True), "kahan_summation=True"),
    ("NAdam", dict(state_dtype="int8"), "state_dtype='int8'"),
    ("RAdam", dict(state_dtype="int8"), "state_dtype='int8'"),
)


def _torch_flags(name):
    parameters = both(name)[1].__init__.__code__.co_varnames
    return [flag for flag in ("foreach", "capturable", "differentiable") if flag in parameters]


@pytest.mark.parametrize(("name", "option", "words"), OWN_OPTIONS, ids=[c[0] for c in OWN_OPTIONS])
def test_an_adamkit_option_with_a_torch_implementation_flag_is_refused_naming_both(name, option, words):
    adamkit_class = both(name)[1]
    for flag in _torch_flags(name):
        pattern = rf"{re.escape(words)} cannot be used with {flag}=True"
        with pytest.raises(ValueError, match=pattern):
            adamkit_class([torch.nn.Parameter(torch.ones(7))], **option, **{flag: True})
        optimizer = adamkit_class([torch.nn.Parameter(torch.ones(7))], **option)
        groups = copy.deepcopy(optimizer.param_groups)
        with pytest.raises(ValueError, match=pattern):
            optimizer.add_param_group({"params": [torch.nn.Parameter(torch.ones(3))], flag: True})
        assert len(optimizer.param_groups) == len(groups)


@pytest.mark.parametrize(("name", "option", "words"), OWN_OPTIONS, ids=[c[0] for c in OWN_OPTIONS])
def test_a_torch_flag_set_on_a_group_with_an_adamkit_option_raises_at_the_step_and_changes_nothing(name, option, words):
    adamkit_class = both(name)[1]
    param = torch.nn.Parameter(torch.ones(4097))
    optimizer = adamkit_class([param], **option)
    param.grad = torch.full_like(param, 0.5)
    optimizer.step()
    before, state = param.detach().clone(), copy.deepcopy(optimizer.state[param])
    for flag in _torch_flags(name):
        optimizer.param_groups[0][flag] = True
        with pytest.raises(ValueError, match=rf"param_groups\[0\]: {re.escape(words)} cannot be used with {flag}=True"):
            optimizer.step()
        optimizer.param_groups[0][flag] = False
    assert torch.equal(param, before)
    assert all(torch.equal(value, optimizer.state[param][key]) for key, value in state.items())


@pytest.mark.parametrize("name", FUSED)
def test_fused_with_foreach_or_differentiable_raises_torchs_runtime_error(name):
    torch_class, adamkit_class = both(name)
    for flags, message in ((dict(foreach=True), "`fused` and `foreach` cannot be `True` together"), (dict(differentiable=True), "`fused` does not support `differentiable`")):
        for cls in (torch_class, adamkit_class):
            with pytest.raises(RuntimeError, match=message):
                cls([torch.nn.Parameter(torch.ones(3))], fused=True, **flags)


@pytest.mark.parametrize("name", FUSED)
def test_fused_on_a_complex_parameter_raises_torchs_runtime_error(name):
    for cls in both(name):
        param = torch.nn.Parameter(torch.ones(3, dtype=torch.complex64))
        param.grad = torch.ones_like(param)
        with pytest.raises(RuntimeError, match=r"`fused=True` requires all the params to be floating point"):
            cls([param], fused=True).step()
        assert torch.equal(param.detach(), torch.ones(3, dtype=torch.complex64))


@pytest.mark.parametrize("name", CAPTURABLE)
def test_capturable_on_the_cpu_raises_torchs_assertion(name):
    for cls in both(name):
        param = torch.nn.Parameter(torch.ones(3))
        param.grad = torch.ones_like(param)
        with pytest.raises(AssertionError, match="If capturable=True, params(, mu_products)? and state_steps must be on supported devices"):
            cls([param], capturable=True).step()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    (
        (dict(lr=torch.tensor(1e-3), foreach=True), "lr as a Tensor is not supported for capturable=False and foreach=True"),
        (dict(betas=(0.9, torch.tensor(0.99))), "betas must be either both floats or both Tensors"),
        (dict(betas=(torch.tensor(0.9), torch.tensor(0.99)), foreach=True), r"betas\[0\] as a Tensor is not supported"),
    ),
)
def test_adams_tensor_hyperparameter_checks_are_torchs(kwargs, message):
    for cls in (torch.optim.Adam, adamkit.torch.Adam, torch.optim.AdamW, adamkit.torch.AdamW):
        with pytest.raises(ValueError, match=message):
            cls([torch.nn.Parameter(torch.ones(3))], **kwargs)


def test_skipping_nonfinite_steps_works_with_foreach():
    ours = _run(adamkit.torch.Adam, dict(lr=1e-2, nonfinite_grads="skip"), dict(foreach=True))
    theirs = _run(torch.optim.Adam, dict(lr=1e-2), dict(foreach=True))
    params, optimizer = ours
    params[1].grad = torch.full_like(params[1], float("nan"))
    before = [param.detach().clone() for param in params]
    with pytest.warns(NonFiniteGradientWarning, match=r"param_groups\[1\]\['params'\]\[0\]"):
        optimizer.step()
    assert optimizer.skipped_steps == 1 and all(torch.equal(a, b) for a, b in zip(params, before))
    _assert_equal_runs(ours, theirs)


def _resume(cls, hyper, flags, params, state_dict, steps=3):
    params = [torch.nn.Parameter(param.detach().clone()) for param in params]
    optimizer = cls(_groups(params, hyper["lr"] / 2), **hyper, **flags)
    optimizer.load_state_dict(copy.deepcopy(state_dict))
    generator = torch.Generator().manual_seed(99)
    for _ in range(steps):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator)
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize(("name", "hyper"), CASES, ids=IDS)
def test_state_dicts_move_between_adamkit_foreach_and_torch_foreach(name, hyper):
    torch_class, adamkit_class = both(name)
    flags = dict(foreach=True)
    for source, target in ((adamkit_class, torch_class), (torch_class, adamkit_class)):
        params, optimizer = _run(source, hyper, flags)
        saved = optimizer.state_dict()
        _assert_equal_runs(_resume(target, hyper, flags, params, saved), _resume(source, hyper, flags, params, saved))


@pytest.mark.parametrize(("name", "hyper"), CASES, ids=IDS)
def test_switching_a_groups_flags_between_steps(name, hyper):
    """Kernel steps, then foreach steps (bitwise torch's from the same state), then kernel
    steps again: each path takes over the state and the step counts of the other."""
    torch_class, adamkit_class = both(name)
    params, optimizer = _run(adamkit_class, hyper, {}, steps=2)
    for group in optimizer.param_groups:
        group["foreach"] = True
    saved = optimizer.state_dict()
    torch_run = _resume(torch_class, hyper, dict(foreach=True), params, saved)
    generator = torch.Generator().manual_seed(99)
    for _ in range(3):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator)
        optimizer.step()
    _assert_equal_runs((params, optimizer), torch_run)
    optimizer.param_groups[1]["foreach"] = None
    optimizer.step()
    steps = [float(optimizer.state[param]["step"]) for param in params if "step" in optimizer.state[param]]
    assert steps == [6.0] * len(params) or (not steps and name == "SGD")
