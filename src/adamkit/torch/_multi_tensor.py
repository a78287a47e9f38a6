r"""The rules of :mod:`adamkit.rules` run on whole lists of tensors: the device path.

Tensors the C kernels cannot reach (GPUs and other devices) are stepped with torch operations
on their own device. A rule is written with arithmetic operators and the helpers of
:mod:`adamkit.rules._common`; given :class:`TensorList`\ s instead of arrays, each operator and
helper is one ``torch._foreach_*`` operation over the whole list. So each rule runs once per
bucket of tensors that share a device, a dtype, a step count (the rule's scalars, such as the
bias corrections, depend on it) and the same state slots, and the number of torch operations
per step does not grow with the number of tensors. Every operation is the one the rule applies
to a single tensor, in the same order, so the results are those of the rule run tensor by
tensor with torch operations, bit for bit.

A bfloat16 parameter with float32 state (``state_dtype="fp32"``) or a Kahan compensation
buffer is stepped as the C kernels step it: the rule runs in float32 on float32 copies of the
parameter, its gradient and its state, and every stored value is rounded once; with a buffer
``c`` and the rule's float32 result ``t`` (:mod:`adamkit.torch._kahan`)

.. math::
    s = t + c, \qquad \theta = \mathrm{bf16}(s), \qquad c = \mathrm{bf16}(s - \theta).
"""

import torch


class TensorList:
    """A list of tensors that the rules take as one array: every operation is one
    ``torch._foreach_*`` operation over the list.

    Operands are another :class:`TensorList` of the same length or a Python number. Only the
    operations the rules use are defined; any other raises ``TypeError``.
    """

    __slots__ = ("tensors",)

    def __init__(self, tensors):
        self.tensors = list(tensors)

    def __add__(self, other):
        return _apply(torch._foreach_add, self, other)

    __radd__ = __add__  # the tensor is the first operand of torch's add either way

    def __sub__(self, other):
        return _apply(torch._foreach_sub, self, other)

    def __mul__(self, other):
        return _apply(torch._foreach_mul, self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return _apply(torch._foreach_div, self, other)

    def __neg__(self):
        return TensorList(torch._foreach_neg(self.tensors))

    def sqrt(self):
        """The elementwise square root (``rules._common.sqrt``)."""
        return TensorList(torch._foreach_sqrt(self.tensors))

    def maximum(self, other):
        """The elementwise maximum, NaN propagating (``rules._common.maximum``)."""
        return _apply(torch._foreach_maximum, self, other)

    def minimum(self, other):
        """The elementwise minimum, NaN propagating (``rules._common.minimum``)."""
        return _apply(torch._foreach_minimum, self, other)

    def abs(self):
        """The elementwise absolute value (``rules._common.absolute``)."""
        return TensorList(torch._foreach_abs(self.tensors))

    def sign(self):
        """The elementwise sign, NaN taken to 0 as torch's (``rules._common.sign`` restores NaN)."""
        return TensorList(torch._foreach_sign(self.tensors))

    def clamp_max(self, bound):
        """The elementwise minimum with the number ``bound``, NaN propagating."""
        return TensorList(torch._foreach_clamp_max(self.tensors, bound))

    def clamp_min(self, bound):
        """The elementwise maximum with the number ``bound``."""
        return TensorList(torch._foreach_clamp_min(self.tensors, bound))

    def clone(self):
        """New tensors holding the same values (``rules._common.copy``)."""
        return TensorList(torch._foreach_clone(self.tensors))

    def reciprocal(self):
        """The elementwise ``1 / x`` (``rules._common.reciprocal``)."""
        return TensorList(torch._foreach_reciprocal(self.tensors))

    def squared_norms(self):
        """Each tensor's squared norm, in float64 (``rules.lamb.squared_norm``): the sum is
        torch's reduction, whose order is not the C kernels' blocked one."""
        norms = torch._foreach_norm(self.tensors, 2, dtype=torch.float64)
        return TensorList(torch._foreach_mul(norms, norms))

    def kept_scales(self, floor):
        """The cautious rescale of each tensor, these being its 0/1 masks
        (``rules.cautious.kept_scale``): 1 over the kept fraction, at least ``floor``, as float64
        tensors of no dimension. The counts are sums of ones in float64, hence exact, and the
        division and reciprocal are IEEE's, as ``rules.cautious.scale_of_count`` computes them."""
        counts = torch.stack(torch._foreach_norm(self.tensors, 1, dtype=torch.float64))
        sizes = torch.tensor([t.numel() for t in self.tensors], dtype=torch.float64).to(counts.device)
        fractions = torch.where(sizes == 0, 1.0, counts / sizes.clamp_min(1.0))
        return TensorList(fractions.clamp_min(floor).reciprocal().unbind())

    def trust_ratios(self, update_squared_norms, trust_clip):
        """LAMB's trust ratio of each tensor, these being the parameters' squared norms
        (``rules.lamb.trust_ratio``), as float64 tensors of no dimension."""
        params = torch.stack(self.tensors)
        updates = torch.stack(update_squared_norms.tensors)
        ratios = torch.where((params == 0) | (updates == 0), 1.0, params.sqrt() / updates.sqrt())
        if trust_clip is not None:
            ratios = torch.where(ratios > trust_clip, trust_clip, ratios)
        return TensorList(ratios.unbind())


def _apply(operation, tensor_list, other):
    if isinstance(other, TensorList):
        return TensorList(operation(tensor_list.tensors, other.tensors))
    if isinstance(other, (int, float)):
        return TensorList(operation(tensor_list.tensors, other))
    return NotImplemented


def update(spec, hyperparameters, params, grads, states, steps, compensations, float32_state=False):
    """Step every ``params[i]`` in place with ``grads[i]``, ``states[i]`` and ``steps[i]``,
    as :func:`adamkit.kernels.reference.update` does, with one run of the rule per bucket.

    ``states[i]`` maps state keys to tensors updated in place; a slot the rule creates on its
    first step (SGD's momentum buffer) is added to it as a new tensor. ``steps[i]`` counts
    this step, or is ``None`` for rules that do not count steps. ``compensations[i]`` is the
    Kahan buffer of a bfloat16 parameter, or ``None``. ``float32_state`` says that bfloat16
    parameters keep float32 state (``state_dtype="fp32"``): they are stepped in float32, and a
    slot the rule creates is float32.
    """
    buckets = {}
    for index, (param, state, step, compensation) in enumerate(zip(params, states, steps, compensations, strict=True)):
        layout = tuple((key, value.dtype) for key, value in sorted(state.items()))
        buckets.setdefault((param.device, param.dtype, step, layout, compensation is not None), []).append(index)
    keys = [slot.key for slot in spec.slots]
    for (_, dtype, step, _, compensated), indices in buckets.items():
        float32 = dtype is torch.bfloat16 and (compensated or float32_state)
        _update_bucket(
            spec,
            keys,
            hyperparameters,
            [params[i] for i in indices],
            [grads[i] for i in indices],
            [states[i] for i in indices],
            step,
            [compensations[i] for i in indices] if compensated else None,
            float32,
            torch.float32 if float32 and float32_state else dtype,
        )


def _update_bucket(spec, keys, hyperparameters, params, grads, states, step, compensations, float32, created_dtype):
    """Run the rule once on the bucket's lists (in float32 if ``float32``) and write the
    results back; a slot the rule creates is stored as ``created_dtype``."""
    present = [key for key in keys if key in states[0]]
    inputs = {key: _operand([state[key] for state in states], float32) for key in present}
    result = spec.rule(
        _operand(params, float32),
        _operand(grads, float32),
        *(inputs.get(key) for key in keys),
        **spec.step_argument(step),
        **hyperparameters,
    )
    if compensations is not None:
        _store_compensated(params, compensations, result.param.tensors)
    else:
        torch._foreach_copy_(params, result.param.tensors)
    for key in keys:
        value = getattr(result, key)
        if value is None:
            continue
        if key in present:
            torch._foreach_copy_([state[key] for state in states], value.tensors)
        else:
            for state, tensor in zip(states, _new_tensors(value.tensors, created_dtype)):
                state[key] = tensor


def _new_tensors(tensors, dtype):
    """New tensors holding ``tensors``' values as ``dtype``: one operation, or, to round float32
    to another dtype (the first step of a rule that creates a slot, in float32 for a bfloat16
    parameter with Kahan summation and bfloat16 state), one per tensor."""
    if all(t.dtype is dtype for t in tensors):
        return torch._foreach_clone(tensors)
    return [t.to(dtype) for t in tensors]


def _operand(tensors, float32):
    """The rule's operand for ``tensors``: as they are, or, with ``float32``, float32 copies of
    those that are not float32 (one operation: each is multiplied by a float32 one of one
    dimension, which type promotion widens exactly)."""
    if not float32 or all(t.dtype is torch.float32 for t in tensors):
        return TensorList(tensors)
    one = torch.ones(1, dtype=torch.float32, device=tensors[0].device)
    return TensorList(torch._foreach_mul(tensors, [one] * len(tensors)))


def _store_compensated(params, compensations, results):
    """Store the float32 ``results`` in the bfloat16 ``params`` with Kahan summation."""
    sums = torch._foreach_add(results, compensations)
    torch._foreach_copy_(params, sums)
    torch._foreach_copy_(compensations, torch._foreach_sub(sums, params))
