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

adamkit's own options (``eps_hat``, ``cautious``, ``state_dtype``, ``kahan_summation=True``,
``sparse_mode="dense"``) are math torch's implementation cannot do: with an explicit torch
implementation flag they raise ``ValueError`` (:func:`check_group`), never ignored.
"""

import torch
from torch.optim.optimizer import _device_dtype_check_for_fused

from adamkit.torch import _backend as backend
from adamkit.torch import _cautious as cautious

# The flags that name one of torch's implementations, which adamkit's kernels are not.
TORCH_FLAGS = ("foreach", "capturable", "differentiable")


def check_group(optimizer, group):
    """Raise ``ValueError`` naming both settings if ``group`` asks for torch's implementation
    with one of adamkit's own options, which that implementation cannot honour, or asks for
    ``cautious=True`` where it cannot be honoured (:func:`adamkit.torch._cautious.check_group`)."""
    cautious.check_group(optimizer, group)
    flag = next((name for name in TORCH_FLAGS if group.get(name)), None)
    if flag is None:
        return
    if not has_torch_implementation(optimizer):
        raise ValueError(
            f"{flag}={group[flag]!r} asks for torch.optim's own implementation, which "
            f"{optimizer.spec.name} does not have"
        )
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
    adamkit's own options (then its ``fused=True``, if set, is torch's fused implementation).
    An optimizer torch.optim does not have never goes to torch."""
    if all(backend.steps_on_cpu(optimizer.spec, param) for param in params) or not has_torch_implementation(optimizer):
        return False
    if own_option(optimizer, group) is not None or any(param.grad.layout != torch.strided for param in params):
        return False  # adamkit's device path: its options, its sparse steps
    return True


def has_torch_implementation(optimizer):
    """Whether torch.optim has ``optimizer``'s rule: its class steps through torch's functional
    API (``_step_with_torch``); AdaBelief has none, and runs adamkit's device path everywhere."""
    return hasattr(optimizer, "_step_with_torch")


def step_group(optimizer, group):
    """Step ``group`` as ``torch.optim.<name>.step`` steps one group: through the optimizer
    class's ``_step_with_torch``, which calls torch's functional implementation of its rule."""
    name = optimizer.spec.name
    if group.get("fused"):
        for param in group["params"]:
            if param.grad is not None:
                _device_dtype_check_for_fused(param)  # before any state is made, as torch raises
    optimizer._step_with_torch(group, getattr(torch.optim, name))


def own_option(optimizer, group):
    """The first of adamkit's own options ``optimizer`` uses for ``group``, as ``name=value``."""
    if group.get("eps_hat"):
        return "eps_hat=True"
    if group.get("cautious"):
        return "cautious=True"
    if optimizer.state_dtype is not None:
        return f"state_dtype={optimizer.state_dtype!r}"
    if optimizer.kahan_summation:
        return "kahan_summation=True"
    if group.get("sparse_mode") == "dense":
        return "sparse_mode='dense'"
    return None


def amp_arguments(optimizer):
    """The ``grad_scale`` and ``found_inf`` that ``torch.amp.GradScaler`` set on ``optimizer``,
    which torch's functional implementations of Adam, SGD and Adagrad take."""
    return dict(grad_scale=getattr(optimizer, "grad_scale", None), found_inf=getattr(optimizer, "found_inf", None))
