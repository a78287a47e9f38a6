"""A NumPy optimizer's step over its groups, laid out once and re-checked at every step.

The full step looks up each parameter's state dict and checks each gradient in Python, which
costs microseconds per array: over thousands of small arrays, more than the kernels. After a
full step, a :class:`StepPlan` keeps the state arrays laid out by slot for the kernels, and the
step counts of each group packed in one array (each ``state["step"]`` is a 0-d view into it).

A cached plan is a cache, not a contract. A later step goes through it only if nothing it
relies on changed, all checked before anything is updated:

- the same groups holding the same parameters, with hyperparameters that pass the spec's
  checks and the same active state slots;
- the optimizer's state container, and each stepped parameter's state dict holding exactly
  the entries it held (keys and values by identity, in order), however it was changed
  (``dict.__setitem__`` too): so the very step counts and state arrays the plan steps (8-bit
  codes and their scales, bfloat16 bits);
- each of these arrays and each parameter still at its data pointer, of its dtype and shape,
  writeable, C-contiguous, aligned and of native byte order: what Python can change of an
  array without replacing it (``ndarray.resize``, assigning its ``shape``, ``dtype`` or
  ``flags``);
- gradients for the same parameters (``None`` in the same places), each a NumPy array of its
  parameter's dtype and shape, C-contiguous, aligned, and apart from every array the step
  writes (a gradient at the address it had at the last step is known to be).

The last three are checked in one call to C (:func:`adamkit.kernels.native.arrays_as_planned`),
after the hyperparameters are read, so that no Python code (a ``__float__``) runs between the
checks and the kernels. Otherwise the
optimizer's full path runs, which names any bad input, and makes a new plan; no plan is made
while a state array must be stepped through a copy (one that is strided or unaligned), or
while the step counts of a group differ in dtype.

The plan holds every array it steps, so that none of their memory is freed while it has the
pointers. One caveat remains, as for any NumPy code: ``ndarray.resize(refcheck=False)``, which
NumPy's documentation calls unsafe, frees an array's memory under every view of it. The plan
sees it when the resized array is a parameter or state array itself (a new pointer or size);
when it is an array that a parameter or state array is a view of, nothing can see it, and the
step writes freed memory, as any NumPy operation on that view would.

Each call keeps its parameters' and state arrays' data pointers
(:class:`~adamkit.numpy._stepping.PlannedStep`) and reads only the gradients' at each step;
parameters with compact state (``state_dtype="int8"`` or ``"bf16"``) are planned too. Like the
full step, the plan makes a call per state layout and dtype.
"""


import numpy as np

from adamkit.kernels import native
from adamkit.numpy import _stepping
from adamkit.numpy._state_layout import slot_names


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
        states = [state for batch in self._batches for state in batch.states]
        arrays = self._stepped + [
            state[name] for batch in self._batches for state, in_state in zip(batch.states, batch.names) for name in in_state
        ]
        # self._held: the keys and values whose addresses `items` holds, kept so that none is reused.
        items, self._held, records, dims, ranges = native.plan_tables(states, arrays)
        self._table = (states, items, arrays, records, dims, ranges, np.zeros(len(self._stepped), np.int64))

    @classmethod
    def build(cls, optimizer, grads):
        """A plan after a full step with ``grads``, or ``None`` if the kernels are not built, the
        arrays cannot be stepped as they are (a state array stepped through a copy) or overlap
        (which the full path refuses), or a group's step counts differ in dtype (they could not
        share one array)."""
        if not native.available():
            return None
        plan = cls(optimizer, grads)
        ranges = plan._table[-2]
        apart = bool(np.all(ranges[1:, 0] >= ranges[:-1, 1]))
        packed = all(batch.steps_packed for batch in plan._batches)
        return plan if apart and packed and native.arrays_as_planned([], *plan._table) else None

    def step(self, optimizer, grads):
        """Step with ``grads`` through the plan and return ``True``, or ``False`` if it no longer holds."""
        if not (
            type(grads) is list
            and optimizer._states is self._container
            and type(optimizer.param_groups) is list
            and native.same_objects(optimizer.param_groups, self._groups)
            and all(type(g["params"]) is list for g in self._groups)
            and all(native.same_objects(g["params"], params) for g, params in zip(self._groups, self._group_params))
            and [grad is not None for grad in grads] == self._has_grad
            and all(batch.holds(self._spec) for batch in self._batches)
        ):
            return False
        # Read before the arrays are checked: converting a hyperparameter may run Python code.
        hyperparameters = [self._spec.rule_arguments(batch.group) for batch in self._batches]
        grads = [grad for grad in grads if grad is not None]
        if not native.arrays_as_planned(grads, *self._table) or not all(batch.counts_valid() for batch in self._batches):
            return False
        start = 0
        for batch, arguments in zip(self._batches, hyperparameters):
            end = start + len(batch.params)
            batch.step(arguments, grads[start:end])
            start = end
        return True


class _Batch:
    """One group's stepped parameters, their state dicts and the names of the arrays in them
    the plan steps, their packed step counts, and a call per state layout and dtype."""

    def __init__(self, spec, group, params, states, state_dtype):
        self.group, self.params, self.states = group, params, states
        self.keys = [slot.key for slot in spec.active_slots(group)]  # every slot exists
        self._steps = None
        self.steps_packed = not spec.counts_steps or len({state["step"].dtype for state in states}) <= 1
        if spec.counts_steps and params and self.steps_packed:
            self._steps = np.array([state["step"] for state in states], dtype=states[0]["step"].dtype)
            for index, state in enumerate(states):
                state["step"] = self._steps[index : index + 1].reshape(())
        self._calls = []  # (the indices of the parameters it steps, or None for all; the call)
        self.names = [None] * len(params)  # of each parameter's step count and state arrays
        for (held, _), picked in _stepping.buckets(params, state_dtype).items():
            call = _stepping.PlannedStep(spec, held, [params[i] for i in picked], [states[i] for i in picked], self.keys)
            self._calls.append((None if len(picked) == len(params) else picked, call))
            names = ["step"] * spec.counts_steps + slot_names(self.keys, held)
            for index in picked:
                self.names[index] = names

    def holds(self, spec):
        """Whether the group's hyperparameters pass the spec and select the plan's state slots."""
        try:
            spec.validate(self.group)
        except (TypeError, ValueError):
            return False
        return [slot.key for slot in spec.active_slots(self.group)] == self.keys

    def counts_valid(self):
        """Whether every packed step count is finite and at least 0 (else the full path names
        the parameter whose count is not)."""
        return self._steps is None or bool(np.isfinite(self._steps).all() and (self._steps >= 0).all())

    def step(self, hyperparameters, grads):
        if not self.params:
            return
        steps = (self._steps + 1).tolist() if self._steps is not None else [None] * len(self.params)
        for picked, call in self._calls:
            if picked is None:
                call(hyperparameters, grads=grads, steps=steps)
            else:
                call(hyperparameters, grads=[grads[i] for i in picked], steps=[steps[i] for i in picked])
        if self._steps is not None:
            self._steps += 1
