"""Small pieces every rule shares: the sign of the gradient, L2 weight decay, and the five
operations whose spelling differs between NumPy and torch.

A rule takes NumPy arrays; it also takes torch tensors on any device, and lists of tensors
(:class:`adamkit.torch._multi_tensor.TensorList`, each operation one ``torch._foreach_*``
operation over the list), which is how the torch front end steps tensors the C kernels cannot
reach (GPUs and other devices). Arithmetic operators are the same in all three; :func:`sqrt`,
:func:`maximum`, :func:`minimum`, :func:`absolute`, :func:`sign` and :func:`copy` call the value's own method when it spells
them as torch does, so that nothing is moved to NumPy.
"""

import numpy as np


def directed_gradient(grad, maximize):
    """Return ``-grad`` when maximizing, else ``grad``: the direction the rule descends."""
    return -grad if maximize else grad


def with_l2_penalty(grad, param, weight_decay):
    r"""Fold an L2 penalty into the gradient: :math:`g \leftarrow g + \lambda\theta`."""
    return grad + weight_decay * param if weight_decay != 0 else grad


def is_tensor(value):
    """Whether ``value`` is a torch tensor (checked without importing torch)."""
    return type(value).__module__.startswith("torch")


def _torch_style(value):
    """Whether ``value`` has torch's methods (a tensor, or a list of tensors that acts as one)
    rather than being a NumPy array or scalar: it has ``clone``, which NumPy has not."""
    return hasattr(value, "clone")


def sqrt(x):
    """The elementwise square root."""
    return x.sqrt() if _torch_style(x) else np.sqrt(x)


def maximum(a, b):
    """The elementwise maximum; NaN in either operand propagates. ``b`` may be a number."""
    if not _torch_style(a):
        return np.maximum(a, b)
    if is_tensor(a) and not _torch_style(b):
        return a.clamp_min(b)  # torch.maximum takes tensors only
    return a.maximum(b)


def minimum(a, b):
    """The elementwise minimum; NaN in either operand propagates. ``b`` may be a number."""
    if not _torch_style(a):
        return np.minimum(a, b)
    if is_tensor(a) and not _torch_style(b):
        return a.clamp_max(b)
    return a.minimum(b)


def absolute(x):
    """The elementwise absolute value."""
    return x.abs() if _torch_style(x) else np.abs(x)


def sign(x):
    """The elementwise sign: -1, 0 or 1, and NaN for NaN, as NumPy's. torch's ``sign`` takes NaN
    to 0; the maximum with ``min(x, -1)``, which is at most -1 unless ``x`` is NaN, restores it."""
    if not _torch_style(x):
        return np.sign(x)
    return x.sign().maximum(x.clamp_max(-1.0))


def copy(x):
    """A new array (or tensor) holding the values of ``x``."""
    return x.clone() if _torch_style(x) else np.array(x, copy=True)


def reciprocal(x):
    """The elementwise ``1 / x``, as torch's ``scalar / tensor`` computes it before scaling."""
    return x.reciprocal() if _torch_style(x) else 1 / x
