"""How a NumPy optimizer steps its parameters: in buckets of one dtype and one state layout
(:mod:`adamkit.numpy._state_layout`).

State in the parameter's dtype is stepped by the kernels (:func:`adamkit.kernels.native.update`),
which take one dtype per call. ``"int8"`` state is stepped by the fused 8-bit kernel
(:mod:`adamkit.kernels.quantized`), which computes exactly ``decode -> the rule -> encode``.
``"bf16"`` state is stepped by the kernels' float32-parameter, bfloat16-state layout, which
loads it exactly, runs the rule in float32 and stores it rounded stochastically in the same
pass, with counter-based random bits seeded by each parameter's step and its position among
the group's parameters with bfloat16 state (:func:`adamkit.compact.policy.rounding_seed`): the
torch front end does the same, so the two store the same bits. Rounded to nearest instead, ``exp_avg_sq`` would stall (see :mod:`adamkit.torch._compact_state`).
"""

import numpy as np

from adamkit.compact.policy import rounding_seeds
from adamkit.kernels import native, quantized
from adamkit.numpy._state_layout import layout, slot_names


def buckets(params, state_dtype):
    """``{(layout, dtype): indices}``: the positions in ``params`` of each layout and dtype."""
    found = {}
    for index, param in enumerate(params):
        found.setdefault((layout(param, state_dtype), param.dtype), []).append(index)
    return found


def update(spec, hyperparameters, held, params, grads, states, steps):
    """Step ``params`` of one dtype whose ``states`` (their slots, without ``step``) are held as
    ``held``, in place; a slot the rule creates (SGD's) is added to ``states``."""
    if held == "int8":
        quantized.update(spec, params, grads, states, steps, **hyperparameters)
    elif held == "bf16":
        keys = quantized.state_keys(spec, hyperparameters)
        grads = [np.ascontiguousarray(grad, np.float32) for grad in grads]
        PlannedStep(spec, held, params, states, keys)(hyperparameters, grads, steps)
    else:
        native.update(spec, hyperparameters, params, grads, states, steps)


class PlannedStep:
    """The kernel call of fixed parameters and state arrays held one way (``held``: ``None``,
    ``"bf16"`` or ``"int8"``), for :mod:`adamkit.numpy._cached_plan`.

    Their data pointers are read once; :mod:`adamkit.numpy._cached_plan` checks at each step, before
    the call, that the arrays are still the same objects at the same pointers. At each step
    only the gradients' pointers are read, in C.
    """

    def __init__(self, spec, held, params, states, keys):
        self._spec, self._held = spec, held
        self._dtype = params[0].dtype.name
        self._numels = np.array([param.size for param in params], np.int64)
        self._param_ptrs = native.data_pointers(params)
        self._state_ptrs = {
            name: native.data_pointers([state[name] for state in states]) for name in slot_names(keys, held)
        }

    def __call__(self, hyperparameters, grads, steps):
        grad_ptrs = native.data_pointers(grads)
        arguments = (self._spec, hyperparameters)
        if self._held == "int8":
            quantized.update_pointers(*arguments, self._numels, self._param_ptrs, grad_ptrs, self._state_ptrs, steps)
            return
        bfloat16 = {}
        if self._held == "bf16":
            bfloat16 = {"state_dtype": "bfloat16", "rounding_seeds": rounding_seeds(steps)}
        native.update_pointers(
            *arguments, self._dtype, self._numels, self._param_ptrs, grad_ptrs, self._state_ptrs, steps, **bfloat16
        )
