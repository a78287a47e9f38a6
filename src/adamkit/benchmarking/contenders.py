"""The contenders for one rule on one workload, each with its own copy of params and state.

Every contender starts from the same initial parameters and reads the same gradient tensors,
which are set once and shared (no optimizer here writes to a gradient). Labels:

- ``adamkit.torch``: ``adamkit.torch.<Optimizer>`` with its default backend;
- ``adamkit.numpy``: ``adamkit.numpy.<Optimizer>(arrays, ...)`` stepped with ``step(grads)``,
  imported lazily and skipped with a note when it is missing;
- ``torch for-loop``, ``torch foreach``, ``torch fused``: ``torch.optim.<Optimizer>`` with
  ``foreach=False``, ``foreach=True`` and ``fused=True`` (fused only where torch offers it);
- ``plain NumPy``: :class:`~adamkit.benchmarking.plain_numpy.PlainNumpyAdam`, for Adam;
- ``adamkit.torch int8``, ``adamkit.torch bf16``: ``adamkit.torch.<Optimizer>(...,
  state_dtype="int8")`` (8-bit block-wise state) and ``state_dtype="bf16"`` (bfloat16 state with
  stochastic rounding), for every rule whose optimizer takes them (:mod:`adamkit.compact.policy`;
  a note says why not otherwise);
- ``bitsandbytes AdamW8bit``, ``torchao AdamW8bit``: 8-bit AdamW, for AdamW, when installed.
"""

import importlib
import importlib.util
import inspect

import torch

import adamkit.torch
from adamkit import specs
from adamkit.benchmarking.plain_numpy import PlainNumpyAdam
from adamkit.benchmarking.schedule import Contender
from adamkit.compact import policy

ADAMKIT_TORCH = "adamkit.torch"
ADAMKIT_NUMPY = "adamkit.numpy"
TORCH_PATHS = {
    "torch for-loop": {"foreach": False},
    "torch foreach": {"foreach": True},
    "torch fused": {"fused": True},
}
PLAIN_NUMPY = "plain NumPy"
ADAMKIT_INT8 = "adamkit.torch int8"
ADAMKIT_BF16 = "adamkit.torch bf16"
# adamkit.torch with compact optimizer state, by the state_dtype each is built with.
COMPACT_STATE = {ADAMKIT_INT8: "int8", ADAMKIT_BF16: "bf16"}
EIGHT_BIT = {
    "bitsandbytes AdamW8bit": ("bitsandbytes.optim", "AdamW8bit"),
    "torchao AdamW8bit": ("torchao.optim", "AdamW8bit"),
}
# Contenders that keep full-precision state, so they move the bytes of the bandwidth bound.
FULL_PRECISION = (ADAMKIT_TORCH, ADAMKIT_NUMPY, *TORCH_PATHS, PLAIN_NUMPY)
LABELS = (*FULL_PRECISION, *COMPACT_STATE, *EIGHT_BIT)


def build(case, init, grads):
    """The contenders for rule ``case`` on tensors ``init`` with gradients ``grads``.

    Returns ``(contenders, notes)``; a note says why a contender is absent.
    """
    notes = []
    contenders = [_adamkit_torch(case, init, grads)]
    contenders.append(_adamkit_numpy(case, init, grads, notes))
    for label, flags in TORCH_PATHS.items():
        contenders.append(_torch_path(label, flags, case, init, grads, notes))
    if case.name == "Adam":
        params = _arrays(init)
        optimizer = PlainNumpyAdam(params, **case.hyperparameters)
        arrays = [grad.numpy() for grad in grads]
        contenders.append(Contender(PLAIN_NUMPY, lambda: optimizer.step(arrays), params=params))
    for label, state_dtype in COMPACT_STATE.items():
        contenders.append(_adamkit_compact(label, state_dtype, case, init, grads, notes))
    if case.name == "AdamW":
        for label, (module_name, class_name) in EIGHT_BIT.items():
            contenders.append(_eight_bit(label, module_name, class_name, case, init, grads, notes))
    return [contender for contender in contenders if contender is not None], notes


def _parameters(init, grads):
    params = [torch.nn.Parameter(tensor.clone()) for tensor in init]
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad
    return params


def _arrays(init):
    return [tensor.numpy().copy() for tensor in init]


def _adamkit_torch(case, init, grads):
    params = _parameters(init, grads)
    optimizer = getattr(adamkit.torch, case.optimizer)(params, **case.hyperparameters)
    return Contender(ADAMKIT_TORCH, optimizer.step, params=params)


def _adamkit_compact(label, state_dtype, case, init, grads, notes):
    spec = specs.BY_NAME[case.optimizer]
    if not policy.takes_compact_state(spec, state_dtype):
        notes.append(f"{label} not timed: {case.optimizer} does not take state_dtype={state_dtype!r}")
        return None
    params = _parameters(init, grads)
    try:
        optimizer = getattr(adamkit.torch, case.optimizer)(params, **case.hyperparameters, state_dtype=state_dtype)
    except (RuntimeError, ValueError) as error:  # RuntimeError: the C kernels were not built
        notes.append(f"{label} not timed: {error}")
        return None
    return Contender(label, optimizer.step, optional=True, params=params)


def _adamkit_numpy(case, init, grads, notes):
    try:
        module = importlib.import_module("adamkit.numpy")
    except ImportError as error:
        notes.append(f"{ADAMKIT_NUMPY} not timed: {error}")
        return None
    optimizer_class = getattr(module, case.optimizer, None)
    if optimizer_class is None:
        notes.append(f"{ADAMKIT_NUMPY} not timed: it has no {case.optimizer}")
        return None
    params = _arrays(init)
    arrays = [grad.numpy() for grad in grads]
    try:
        optimizer = optimizer_class(params, **case.hyperparameters)
    except (TypeError, ValueError) as error:
        notes.append(f"{ADAMKIT_NUMPY} not timed: {case.optimizer}(arrays) raised {error!r}")
        return None
    return Contender(ADAMKIT_NUMPY, lambda: optimizer.step(arrays), optional=True, params=params)


def _torch_path(label, flags, case, init, grads, notes):
    optimizer_class = getattr(torch.optim, case.optimizer, None)
    if optimizer_class is None:
        notes.append(f"{label} not timed: torch.optim has no {case.optimizer}")
        return None
    accepted = inspect.signature(optimizer_class).parameters
    missing = [flag for flag in flags if flag not in accepted]
    if missing:
        notes.append(f"{label} not timed: torch.optim.{case.optimizer} has no {missing[0]} path")
        return None
    params = _parameters(init, grads)
    try:
        optimizer = optimizer_class(params, **case.hyperparameters, **flags)
    except (RuntimeError, TypeError, ValueError) as error:
        if label != "torch fused":
            raise
        notes.append(f"{label} not timed: torch.optim.{case.optimizer} raised {error!r}")
        return None
    return Contender(label, optimizer.step, optional=label == "torch fused", params=params)


def _eight_bit(label, module_name, class_name, case, init, grads, notes):
    package = module_name.partition(".")[0]
    if importlib.util.find_spec(package) is None:
        notes.append(f"{label} not timed: {package} is not installed")
        return None
    params = _parameters(init, grads)
    try:
        optimizer = getattr(importlib.import_module(module_name), class_name)(params, **case.hyperparameters)
    except Exception as error:
        notes.append(f"{label} not timed: {module_name}.{class_name} raised {error!r}")
        return None
    return Contender(label, optimizer.step, optional=True, params=params)
