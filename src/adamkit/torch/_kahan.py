r"""Kahan summation for bfloat16 parameters: the ``kahan_summation`` argument.

A bfloat16 parameter has 8 significant bits, so an update smaller than half its spacing
(about :math:`2^{-9}|\theta|`) is rounded away at every step, and bfloat16 training without a
float32 master copy stalls once the updates are small. With Kahan summation each bfloat16
parameter has a bfloat16 buffer ``state["kahan_compensation"]`` of its shape, holding what
rounding has lost so far; the kernels add it back to the next update, in the same pass:

.. math::

    s = t + c, \qquad \theta = \mathrm{bf16}(s), \qquad c = \mathrm{bf16}(s - \theta),

where :math:`t` is the rule's float32 result. :math:`\theta + c` then follows the float32
trajectory to within the rounding of :math:`c` (see :func:`adamkit.kernels.native.update_pointers`).
The cost is 2 bytes per parameter.

``kahan_summation=None`` (the default) compensates every bfloat16 parameter on the CPU, where
the kernels do the compensation in the same pass; on other devices bfloat16 parameters are
stepped plainly, without a buffer, as torch steps them. ``True`` compensates every bfloat16
parameter, on other devices too, where the multi-tensor torch operations of
:mod:`adamkit.torch._multi_tensor` compute the same formula; ``False`` turns it off (no other
dtype is rounded after the float32 arithmetic). The buffer is created, zero, on a parameter's
first step; ``state_dict()`` saves it,
:meth:`~adamkit.torch.Optimizer.export_torch_state_dict` leaves it out, and a
checkpoint without it starts from zero compensation.
"""

import torch

KEY = "kahan_compensation"


def check_setting(kahan_summation, fused):
    """Raise ``ValueError`` unless ``kahan_summation`` is ``None``, ``True`` or ``False`` and can
    be honoured with ``fused``."""
    if kahan_summation is not None and not isinstance(kahan_summation, bool):
        raise ValueError(f"Invalid kahan_summation: {kahan_summation!r} (must be None, True or False)")
    if kahan_summation and fused is False:
        raise ValueError(
            "kahan_summation=True needs the fused kernels, the only path that steps bfloat16 "
            "parameters; it cannot be used with fused=False"
        )


def applies(param, kahan_summation):
    """Whether ``param`` is stepped with a compensation buffer under ``kahan_summation``."""
    if param.dtype is not torch.bfloat16:
        return False
    return kahan_summation is True or kahan_summation is None and param.is_cpu


def add_buffers(params, states, kahan_summation):
    """Give every parameter it applies to, and that has none yet, a zero compensation buffer."""
    for param, state in zip(params, states):
        if KEY not in state and applies(param, kahan_summation):
            state[KEY] = torch.zeros_like(param, memory_format=torch.contiguous_format)


def drop_unused_buffers(optimizer):
    """Remove the buffers a loaded checkpoint brought for parameters that are not compensated."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param)
            if state is not None and KEY in state and not applies(param, optimizer.kahan_summation):
                del state[KEY]


def pointers(states):
    """The buffers' data pointers of a bucket of states, or ``None`` if it has no buffers."""
    if not any(KEY in state for state in states):
        return None
    return [state[KEY].data_ptr() for state in states]


def without_buffers(state_dict):
    """A copy of a ``state_dict`` without compensation buffers, as ``torch.optim`` saves it."""
    if not isinstance(state_dict, dict) or not isinstance(state_dict.get("state"), dict):
        return state_dict
    return {
        **state_dict,
        "state": {
            pid: {key: value for key, value in state.items() if key != KEY} if isinstance(state, dict) else state
            for pid, state in state_dict["state"].items()
        },
    }
