"""A NumPy optimizer's step over its groups, laid out once and re-checked at every step.

The full step looks up each parameter's state dict and checks each gradient in Python, which
costs microseconds per array: over thousands of small arrays, more than the kernels. After a
full step, a :class:`StepPlan` keeps the state arrays laid out by slot for the kernels, and the
step counts of each group packed in one array (each ``state["step"]`` is a 0-d view into it).

A cached plan is a cache, not a contract. A later step goes through it only if nothing it
relies on changed, all checked before anything is updated:

- the same groups holding the same parameters, with hyperparameters that pass the spec's
  checks and the same active state slots (checked again only when a group's entries change:
  :mod:`adamkit.numpy._hyperparameters`);
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

The last three are checked in one call to C (:func:`adamkit.kernels.plan_checks.arrays_as_planned`),
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

import math

import numpy as np

from adamkit.kernels import native, plan_checks
from adamkit.numpy import _stepping
from adamkit.numpy._hyperparameters import GroupArguments
from adamkit.numpy._state_layout import slot_names


class StepPlan:
    """The cached step of a NumPy optimizer (see the module docstring)."""

    def __init__(self, optimizer, grads):
        spec = optimizer.spec
        self._spec = spec
        self._groups = list(optimizer.param_groups)
        self._group_params = [list(group["params"]) for group in self._groups]
        self._has_grad = [grad is not None for grad in grads]
        self._all_grads = all(self._has_grad)
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
        items, self._held, records, dims, ranges = plan_checks.plan_tables(states, arrays)
        self._table = (states, items, arrays, records, dims, ranges, np.zeros(len(self._stepped), np.int64))

    @classmethod
    def build(cls, optimizer, grads):
        """A plan after a full step with ``grads``, or ``None`` if the kernels are not built, the
        arrays cannot be stepped as they are (a state array stepped through a copy) or overlap
        (which the full path refuses), or a group's step counts differ in dtype (they could not
        share one array)."""
        if not native.available() or not optimizer.spec.native:
            return None
        plan = cls(optimizer, grads)
        ranges = plan._table[-2]
        apart = bool(np.all(ranges[1:, 0] >= ranges[:-1, 1]))
        packed = all(batch.steps_packed for batch in plan._batches)
        return plan if apart and packed and plan_checks.arrays_as_planned([], *plan._table) else None

    def step(self, optimizer, grads):
        """Step with ``grads`` through the plan and return ``True``, or ``False`` if it no longer holds."""
        if not (
            type(grads) is list
            and optimizer._states is self._container
            and type(optimizer.param_groups) is list
            and plan_checks.same_objects(optimizer.param_groups, self._groups)
            and [grad is not None for grad in grads] == self._has_grad
        ):
            return False
        # Read before the arrays are checked: converting a hyperparameter may run Python code.
        arguments = []
        for batch in self._batches:
            rule_arguments = batch.arguments(self._spec)
            if rule_arguments is None:
                return False
            arguments.append(rule_arguments)
        for group, params in zip(self._groups, self._group_params):
            held = group["params"]
            if type(held) is not list or not plan_checks.same_objects(held, params):
                return False
        if not self._all_grads:
            grads = [grad for grad in grads if grad is not None]
        if not plan_checks.arrays_as_planned(grads, *self._table):
            return False
        for batch in self._batches:
            if not batch.counts_valid():
                return False
        start = 0
        for batch, rule_arguments in zip(self._batches, arguments):
            end = start + len(batch.params)
            batch.step(rule_arguments, grads[start:end])
            start = end
        return True


class _Batch:
    """One group's stepped parameters, their state dicts and the names of the arrays in them
    the plan steps, their packed step counts, and a call per state layout and dtype."""

    def __init__(self, spec, group, params, states, state_dtype):
        self.group, self.params, self.states = group, params, states
        self._spec = spec
        self.keys = [slot.key for slot in spec.active_slots(group)]  # every slot exists
        self._arguments = GroupArguments(spec)
        self._slots_checked_for = None  # the last arguments found to select the slots ``keys``
        self._steps = None
        self.steps_packed = not spec.counts_steps or len({state["step"].dtype for state in states}) <= 1
        if spec.counts_steps and params and self.steps_packed:
            self._steps = np.array([state["step"] for state in states], dtype=states[0]["step"].dtype)
            for index, state in enumerate(states):
                state["step"] = self._steps[index : index + 1].reshape(())
            self._one, self._next = np.ones(1, self._steps.dtype), np.empty_like(self._steps)
        self._calls = []  # (the indices of the parameters it steps, or None for all; the call)
        self.names = [None] * len(params)  # of each parameter's step count and state arrays
        for (held, _), picked in _stepping.buckets(params, state_dtype).items():
            call = _stepping.PlannedStep(spec, held, [params[i] for i in picked], [states[i] for i in picked], self.keys)
            self._calls.append((None if len(picked) == len(params) else picked, call))
            scalars = [slot.key for slot in spec.scalar_state]
            names = ["step"] * spec.counts_steps + scalars + slot_names(self.keys, held)
            for index in picked:
                self.names[index] = names

    def arguments(self, spec):
        """The rule's arguments from the group (:class:`~adamkit.numpy._hyperparameters.GroupArguments`),
        or ``None`` if they fail the spec's checks or select other state slots than the plan's:
        then the full path names what is wrong."""
        try:
            arguments = self._arguments.read(self.group)
        except (TypeError, ValueError):
            return None
        if arguments is not self._slots_checked_for:
            if [slot.key for slot in spec.active_slots(arguments)] != self.keys:
                return None
            self._slots_checked_for = arguments
        return arguments

    def counts_valid(self):
        """Whether every packed step count is finite and at least 0 (else the full path names
        the parameter whose count is not)."""
        if self._steps is None:
            return True
        counts = self._steps.tolist()
        return math.isfinite(sum(counts)) and min(counts) >= 0

    def step(self, arguments, grads):
        # A rule that counts per group advances the group whether or not it has gradients.
        group_count = self._spec.group_count(self.group)
        if not self.params:
            return
        if self._steps is None:
            steps = [group_count] * len(self.params)
        else:
            steps = np.add(self._steps, self._one, out=self._next).tolist()
            if self._spec.advance is not None:
                steps = [self._spec.count(state, step, arguments) for state, step in zip(self.states, steps)]
        for picked, call in self._calls:
            if picked is None:
                call(arguments, grads, steps)
            else:
                call(arguments, [grads[i] for i in picked], [steps[i] for i in picked])
        if self._steps is not None:
            np.copyto(self._steps, self._next)
