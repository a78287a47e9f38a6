"""A NumPy optimizer's step over its groups, laid out once and re-checked cheaply every step.

The full step looks up each parameter's state dict and checks each gradient in Python, which
costs microseconds per array: over thousands of small arrays, more than the kernels. After a
full step, a :class:`StepPlan` keeps the state arrays laid out by slot for the kernels, and the
step counts of each group packed in one array (each ``state["step"]`` is a 0-d view into it).
A later step goes through the plan only if nothing it relies on changed, all checked before
anything is updated:

- the same groups holding the same parameters, with hyperparameters that pass the spec's
  checks and the same active state slots;
- gradients for the same parameters (``None`` in the same places), each a NumPy array of its
  parameter's dtype and shape, C-contiguous and apart from it, and parameters that can still
  be written in place (checked in C);
- the optimizer's state container, and no entry of its state dicts added, replaced or
  removed (:mod:`adamkit.numpy._state` counts them).

Otherwise the optimizer's full path runs, which names any bad input, and makes a new plan.

Each call keeps its parameters' and state arrays' data pointers
(:class:`~adamkit.numpy._stepping.PlannedStep`) and reads only the gradients' at each step;
parameters with compact state (``state_dtype="int8"`` or ``"bf16"``) are planned too. Like the
full step, the plan makes a call per state layout and dtype.
"""


import numpy as np

from adamkit.kernels import native
from adamkit.numpy import _stepping


class StepPlan:
    """The cached step of a NumPy optimizer (see the module docstring)."""

    def __init__(self, optimizer, grads):
        spec = optimizer.spec
        self._spec = spec
        self._groups = list(optimizer.param_groups)
        self._group_params = [list(group["params"]) for group in self._groups]
        self._has_grad = [grad is not None for grad in grads]
        self._container = optimizer._states
        self._batches = []
        has_grad = iter(self._has_grad)
        for group, params in zip(self._groups, self._group_params):
            stepped = [param for param in params if next(has_grad)]
            states = [optimizer._states[id(param)][1] for param in stepped]
            self._batches.append(_Batch(spec, group, stepped, states, optimizer.state_dtype))
        self._stepped = [param for batch in self._batches for param in batch.params]
        self._seen_changes = optimizer._state_changes[0]  # after packing the step counters into views

    @classmethod
    def build(cls, optimizer, grads):
        """A plan after a full step with ``grads``, or ``None`` if the kernels are not built."""
        return cls(optimizer, grads) if native.available() else None

    def step(self, optimizer, grads):
        """Step with ``grads`` through the plan and return ``True``, or ``False`` if it no longer holds."""
        if not (
            type(grads) is list
            and optimizer._states is self._container
            and optimizer._state_changes[0] == self._seen_changes
            and native.same_objects(optimizer.param_groups, self._groups)
            and all(native.same_objects(g["params"], params) for g, params in zip(self._groups, self._group_params))
            and [grad is not None for grad in grads] == self._has_grad
            and all(batch.holds(self._spec) for batch in self._batches)
        ):
            return False
        grads = [grad for grad in grads if grad is not None]
        if not native.arrays_fit(self._stepped, grads):
            return False
        start = 0
        for batch in self._batches:
            end = start + len(batch.params)
            batch.step(self._spec, grads[start:end])
            start = end
        return True


class _Batch:
    """One group's stepped parameters, their packed step counts, and a call per state layout
    and dtype."""

    def __init__(self, spec, group, params, states, state_dtype):
        self.group, self.params = group, params
        self.keys = [slot.key for slot in spec.active_slots(group)]  # every slot exists
        self._steps = None
        if spec.counts_steps and params:
            self._steps = np.array([state["step"] for state in states], dtype=states[0]["step"].dtype)
            for index, state in enumerate(states):
                state["step"] = self._steps[index : index + 1].reshape(())
        self._calls = []  # (the indices of the parameters it steps, or None for all; the call)
        for (held, _), picked in _stepping.buckets(params, state_dtype).items():
            call = _stepping.PlannedStep(spec, held, [params[i] for i in picked], [states[i] for i in picked], self.keys)
            self._calls.append((None if len(picked) == len(params) else picked, call))

    def holds(self, spec):
        """Whether the group's hyperparameters pass the spec and select the plan's state slots."""
        try:
            spec.validate(self.group)
        except (TypeError, ValueError):
            return False
        return [slot.key for slot in spec.active_slots(self.group)] == self.keys

    def step(self, spec, grads):
        if not self.params:
            return
        steps = (self._steps + 1).tolist() if self._steps is not None else [None] * len(self.params)
        hyperparameters = spec.rule_arguments(self.group)
        for picked, call in self._calls:
            if picked is None:
                call(hyperparameters, grads=grads, steps=steps)
            else:
                call(hyperparameters, grads=[grads[i] for i in picked], steps=[steps[i] for i in picked])
        if self._steps is not None:
            self._steps += 1


