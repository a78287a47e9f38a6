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
from adamkit.kernels import native, plan_checks, quantized
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
    only the gradients' pointers are read, in C. The rule's arguments come checked (by the
    spec, as :func:`adamkit.numpy._hyperparameters.rule_arguments` gives them): the call is
    made ready (:func:`adamkit.kernels.native.planned_update_pointers`) again only when they
    are another object.
    """

    def __init__(self, spec, held, params, states, keys):
        self._spec, self._held = spec, held
        self._dtype = params[0].dtype.name
        self._numels = np.array([param.size for param in params], np.int64)
        self._param_ptrs = plan_checks.data_pointers(params)
        self._state_ptrs = {
            name: plan_checks.data_pointers([state[name] for state in states]) for name in slot_names(keys, held)
        }
        self._ready_for = self._update = None

    def __call__(self, arguments, grads, steps):
        grad_ptrs = plan_checks.data_pointers(grads)
        if self._held == "int8":
            quantized.update_pointers(
                self._spec, arguments, self._numels, self._param_ptrs, grad_ptrs, self._state_ptrs, steps
            )
            return
        if arguments is not self._ready_for:
            state_dtype = "bfloat16" if self._held == "bf16" else None
            self._update = native.planned_update_pointers(
                self._spec, arguments, self._dtype, self._state_ptrs, state_dtype=state_dtype
            )
            self._ready_for = arguments
        seeds = rounding_seeds(steps) if self._held == "bf16" else None
        self._update(self._numels, self._param_ptrs, grad_ptrs, steps, seeds)
