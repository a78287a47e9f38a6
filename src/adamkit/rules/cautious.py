r"""Cautious updates: the opt-in ``cautious=True`` of Adam, AdamW, Lion and AdEMAMix.

Liang, Chen, Liu & Liu, *Cautious Optimizers: Improving Training with One Line of Code*, 2024,
as the authors' ``c_adamw.py`` computes it (github.com/kyleliang919/C-Optim):

.. math::
    \phi &= \mathbb{1}[u \odot g > 0] \\
    u &\leftarrow u \odot \phi \,/\, \max(\overline{\phi},\ 10^{-3})

where :math:`u` is the rule's update direction before its step size (Adam's :math:`m`, Lion's
:math:`\mathrm{sign}(c)`, AdEMAMix's mixture over its denominator), :math:`g` the gradient the
rule descends (negated under ``maximize``, with λθ under L2 decay), and :math:`\overline{\phi}`
the fraction of the tensor's elements kept, over the whole tensor. Decoupled weight decay is
neither masked nor rescaled. The fraction is a count over the number of elements, exact in
double; the scale :math:`1/\max(\overline{\phi}, 10^{-3})` is computed in double, once per
tensor, then rounded to the tensor's dtype where it multiplies the kept elements.

The authors' ``c_lion.py`` and ``pytorch_optimizer``'s ``cautious`` options rescale by
:math:`n/(\sum\phi + 1)` instead, the form ``c_adamw.py`` keeps only "for record";
``tests/reference/test_cautious_packages.py`` shows the difference.
"""

from adamkit.rules._common import is_tensor

MIN_KEPT_FRACTION = 1e-3
"""The floor of the kept fraction: at most a 1000-fold rescale, when almost nothing is kept."""


def cautious_direction(update, grad):
    r""":math:`u \odot \phi / \max(\overline\phi, 10^{-3})`: ``update`` where its sign agrees
    with ``grad``'s, rescaled by the kept fraction of the whole tensor; 0 elsewhere (NaN stays
    NaN, as the authors' multiplication by the mask keeps it)."""
    kept = agreement(update, grad)
    return update * (kept * kept_scale(kept))


def agreement(update, grad):
    r"""The mask :math:`\phi = \mathbb{1}[u \odot g > 0]`, 1 or 0 in ``update``'s dtype (0 where
    the product is NaN)."""
    product = update * grad
    if hasattr(product, "clamp_min"):
        # torch's sign is 0 at 0 and at NaN, so sign clamped at 0 is the mask in one dtype.
        return product.sign().clamp_min(0.0)
    return (product > 0).astype(product.dtype)


def kept_scale(kept):
    r""":math:`1/\max(\overline\phi, 10^{-3})` in double: a Python float for one array (a
    tensor or NumPy), or, for a list of tensors (the device path), a list of 0-d float64
    tensors, one per tensor."""
    if hasattr(kept, "kept_scales"):
        return kept.kept_scales(MIN_KEPT_FRACTION)
    size = kept.numel() if is_tensor(kept) else kept.size
    return scale_of_count(int((kept != 0).sum()), size)


def scale_of_count(count, size):
    """The rescale of ``count`` kept elements out of ``size``, in double; 1 for an empty tensor."""
    fraction = count / size if size else 1.0
    return 1.0 / max(fraction, MIN_KEPT_FRACTION)
