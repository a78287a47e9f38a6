"""torch's own implementation of a rule: a parameter group stepped through torch.optim's
functional API, for the groups adamkit's kernels do not serve.

A group goes to torch when it asks for one of torch's implementations (``foreach=True``,
``capturable=True``, ``differentiable=True``, or ``fused=True`` with tensors off the kernel
device), or when its tensors are off the kernel device and it uses none of adamkit's own
options (then ``foreach``/``fused`` left unset let torch pick its default for the device).
The lists are gathered by the ``_init_group`` of the ``torch.optim`` class of the same name,
which also creates missing state in torch's layout, and the functional call takes the group's
flags as torch's ``step`` passes them: the bits and the speed are torch's. torch's functional
API advances the ``step`` tensors itself, in place, so adamkit's packed counters
(:mod:`adamkit.torch._step_counters`) stay current.

adamkit's own options (``eps_hat``, ``state_dtype``, ``kahan_summation=True``,
``sparse_mode="dense"``) are math torch's implementation cannot do: with an explicit torch
implementation flag they raise ``ValueError`` (:func:`check_group`), never ignored.
"""

import torch
from torch.optim import adadelta, adagrad, adam, adamax, rmsprop, sgd
from torch.optim.optimizer import _device_dtype_check_for_fused

from adamkit.torch import _backend as backend

# The flags that name one of torch's implementations, which adamkit's kernels are not.
TORCH_FLAGS = ("foreach", "capturable", "differentiable")


def check_group(optimizer, group):
    """Raise ``ValueError`` naming both settings if ``group`` asks for torch's implementation
    with one of adamkit's own options, which that implementation cannot honour."""
    flag = next((name for name in TORCH_FLAGS if group.get(name)), None)
    if flag is None:
        return
    option = own_option(optimizer, group)
    if option is not None:
        raise ValueError(
            f"{option} cannot be used with {flag}={group[flag]!r}: {flag}=True asks for "
            f"torch.optim's own implementation, which has no {option.split('=')[0]}"
        )


def asks_for_torch(group):
    """Whether ``group`` names one of torch's implementations, whatever its tensors' device."""
    return any(group.get(name) for name in TORCH_FLAGS)


def serves_device(optimizer, group, params):
    """Whether torch's implementation steps ``group``, whose parameters with gradients are
    ``params``, for their device: some are off the kernel device and the group uses none of
    adamkit's own options (then its ``fused=True``, if set, is torch's fused implementation)."""
    if all(backend.on_kernel_device(param) for param in params):
        return False
    if own_option(optimizer, group) is not None or any(param.grad.layout != torch.strided for param in params):
        return False  # adamkit's device path: its options, its sparse steps
    return True


def step_group(optimizer, group):
    """Step ``group`` as ``torch.optim.<name>.step`` steps one group."""
    name = optimizer.spec.name
    if group.get("fused"):
        for param in group["params"]:
            if param.grad is not None:
                _device_dtype_check_for_fused(param)  # before any state is made, as torch raises
    _STEPS[name](optimizer, group, getattr(torch.optim, name))


def own_option(optimizer, group):
    """The first of adamkit's own options ``optimizer`` uses for ``group``, as ``name=value``."""
    if group.get("eps_hat"):
        return "eps_hat=True"
    if optimizer.state_dtype is not None:
        return f"state_dtype={optimizer.state_dtype!r}"
    if optimizer.kahan_summation:
        return "kahan_summation=True"
    if group.get("sparse_mode") == "dense":
        return "sparse_mode='dense'"
    return None


def _amp(optimizer):
    return dict(grad_scale=getattr(optimizer, "grad_scale", None), found_inf=getattr(optimizer, "found_inf", None))


def _adam(optimizer, group, torch_class):
    lists = [[] for _ in range(6)]
    has_complex = torch_class._init_group(optimizer, group, *lists)
    beta1, beta2 = group["betas"]
    adam.adam(
        *lists,
        amsgrad=group["amsgrad"],
        has_complex=has_complex,
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=group["maximize"],
        foreach=group["foreach"],
        capturable=group["capturable"],
        differentiable=group["differentiable"],
        fused=group["fused"],
        decoupled_weight_decay=group["decoupled_weight_decay"],
        **_amp(optimizer),
    )


def _adamax(optimizer, group, torch_class):
    lists = [[] for _ in range(5)]
    has_complex = torch_class._init_group(optimizer, group, *lists)
    beta1, beta2 = group["betas"]
    adamax.adamax(
        *lists,
        eps=group["eps"],
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        foreach=group["foreach"],
        maximize=group["maximize"],
        differentiable=group["differentiable"],
        capturable=group["capturable"],
        has_complex=has_complex,
    )


def _adadelta(optimizer, group, torch_class):
    lists = [[] for _ in range(5)]
    has_complex = torch_class._init_group(optimizer, group, *lists)
    adadelta.adadelta(
        *lists,
        lr=group["lr"],
        rho=group["rho"],
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        foreach=group["foreach"],
        maximize=group["maximize"],
        differentiable=group["differentiable"],
        capturable=group["capturable"],
        has_complex=has_complex,
    )


def _sgd(optimizer, group, torch_class):
    params, grads, momentum_buffers = [], [], []
    has_sparse_grad = torch_class._init_group(optimizer, group, params, grads, momentum_buffers)
    sgd.sgd(
        params,
        grads,
        momentum_buffers,
        weight_decay=group["weight_decay"],
        momentum=group["momentum"],
        lr=group["lr"],
        dampening=group["dampening"],
        nesterov=group["nesterov"],
        maximize=group["maximize"],
        has_sparse_grad=has_sparse_grad,
        foreach=group["foreach"],
        fused=group["fused"],
        **_amp(optimizer),
    )
    if group["momentum"] != 0:
        for param, buffer in zip(params, momentum_buffers, strict=True):
            optimizer.state[param]["momentum_buffer"] = buffer


def _adagrad(optimizer, group, torch_class):
    lists = [[] for _ in range(4)]
    has_sparse_grad, has_complex = torch_class._init_group(optimizer, group, *lists)
    adagrad.adagrad(
        *lists,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        lr_decay=group["lr_decay"],
        eps=group["eps"],
        has_sparse_grad=has_sparse_grad,
        foreach=group["foreach"],
        maximize=group["maximize"],
        differentiable=group["differentiable"],
        has_complex=has_complex,
        fused=group["fused"],
        **_amp(optimizer),
    )


def _rmsprop(optimizer, group, torch_class):
    params, grads, square_avgs, momentum_buffers, grad_avgs, steps = lists = [[] for _ in range(6)]
    has_complex = torch_class._init_group(optimizer, group, *lists)
    rmsprop.rmsprop(
        params,
        grads,
        square_avgs,
        grad_avgs,
        momentum_buffers,
        steps,
        lr=group["lr"],
        alpha=group["alpha"],
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        momentum=group["momentum"],
        centered=group["centered"],
        foreach=group["foreach"],
        maximize=group["maximize"],
        differentiable=group["differentiable"],
        capturable=group["capturable"],
        has_complex=has_complex,
    )


_STEPS = {
    "Adam": _adam,
    "AdamW": _adam,
    "Adamax": _adamax,
    "Adadelta": _adadelta,
    "SGD": _sgd,
    "Adagrad": _adagrad,
    "RMSprop": _rmsprop,
}
