"""The base of adamkit's NumPy optimizers.

Like the torch front end, it only adapts containers: it checks arguments, keeps parameter
groups and per-parameter state under torch's keys, and hands the arrays to the backend that
applies the rule. Defaults, checks and state layout come from an :class:`~adamkit.rules._spec.Spec`.
"""

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from adamkit import specs
from adamkit.kernels import plan_checks
from adamkit.kernels.quantized import codes_key, coded_slot
from adamkit.nonfinite import POLICIES, first_nonfinite, warn_skipped
from adamkit.numpy import _state_dict, _state_layout, _stepping
from adamkit.numpy._array_checks import check_grad, check_param, ready
from adamkit.numpy._cached_plan import StepPlan
from adamkit.numpy._groups import as_group_list, canonical, group_params
from adamkit.numpy._hyperparameters import rule_arguments
from adamkit.specs import SCALAR_STATE_KEYS, Spec
from adamkit.step_lock import ATTRIBUTE as STEP_LOCK, one_at_a_time
from adamkit.validation import check_choice


class Optimizer:
    """An optimizer over NumPy arrays, updated in place, whose math is the spec ``spec``.

    A subclass (:func:`adamkit.numpy._optimizers.optimizer_class` makes one per spec) names its
    ``spec``, the hyperparameters that may be passed by ``positional``
    after ``params`` (the rest are keyword-only), and the ``fixed`` spec defaults that are not
    arguments at all (AdamW's decoupled weight decay). Its constructor signature is built
    from these, with the spec's defaults.

    ``nonfinite_grads="skip"`` is an opt-in policy: when any gradient holds NaN or infinity
    the whole step is skipped, a :class:`~adamkit.nonfinite.NonFiniteGradientWarning` names
    the parameter, and ``skipped_steps`` counts it. The default ``"propagate"`` steps anyway.

    ``state_dtype`` follows the torch front end's rules (:mod:`adamkit.compact.policy`):
    ``"int8"`` (the optimizers of :data:`adamkit.specs.COMPACT`) keeps the state of float32 arrays of at least
    :data:`~adamkit.compact.policy.MIN_QUANTIZED_NUMEL` elements 8-bit block-wise, about 2 bytes per
    parameter instead of 8 (:mod:`adamkit.compact.int8`); ``"bf16"`` (the same optimizers) keeps it in
    bfloat16 with stochastic rounding, as uint16 arrays of bfloat16 bit patterns (NumPy has no
    bfloat16 dtype). Other arrays keep state in their own dtype, as with the default ``None``.
    :mod:`adamkit.numpy._state_layout` gives the layout; :meth:`export_state_dict` gives the state
    as float32 arrays.

    The state arrays may be changed or replaced between steps (``opt.state[i]["exp_avg"] = ...``):
    each step uses what the state dicts hold then, checked first. A replacement of the dtype and
    shape the layout keeps, writeable and apart from every other array of the step, is used; one
    that is strided or unaligned is updated in place through a contiguous copy, as torch updates
    non-contiguous state. Anything else raises ``ValueError`` naming the parameter and the key,
    before anything changes.
    """

    spec: ClassVar[Spec] = None  # type: ignore[assignment]  # every subclass names its own
    positional: ClassVar[tuple[str, ...]] = ()
    fixed: ClassVar[tuple[str, ...]] = ()
    # Set for each subclass by __init_subclass__, from its spec.
    hyperparameters: ClassVar[tuple[str, ...]]
    state_keys: ClassVar[tuple[str, ...]]
    __signature__: ClassVar[inspect.Signature]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.spec is not None:
            cls.hyperparameters = tuple(name for name in cls.spec.defaults if name not in cls.fixed)
            scalars = tuple(slot.key for slot in cls.spec.scalar_state)
            cls.state_keys = ("step",) * cls.spec.counts_steps + scalars + tuple(slot.key for slot in cls.spec.slots)
            cls.__signature__ = _constructor_signature(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.spec is None:
            raise TypeError(f"Optimizer is a base class: use {', '.join(spec.name for spec in specs.ALL)}")
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}(): {error}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        params = arguments.pop("params")
        nonfinite_grads = arguments.pop("nonfinite_grads")
        state_dtype = arguments.pop("state_dtype")
        check_choice("nonfinite_grads", nonfinite_grads, POLICIES)
        _state_layout.check_state_dtype(self.spec, state_dtype, type(self).__name__)
        self._state_dtype = state_dtype
        self.defaults = {**self.spec.defaults, **self.checked_hyperparameters(arguments, type(self).__name__)}
        self.nonfinite_grads = nonfinite_grads
        self.skipped_steps = 0
        self.param_groups: list[dict[str, Any]] = []
        self._states: dict[int, tuple[np.ndarray, dict[str, Any]]] = {}
        self._plan = None
        for group in as_group_list(params):
            self.add_param_group(group)

    def __getstate__(self):
        """What ``copy.deepcopy`` and ``pickle`` keep: everything but the cached step plan, which
        holds the arrays' data pointers, and the step lock, and with each parameter's state in the
        order of the parameters (the live table is keyed by the arrays' ids, which a copy does
        not keep)."""
        kept = dict(self.__dict__)
        kept.pop(STEP_LOCK, None)
        kept["_plan"] = None
        kept["_states"] = [self._held_state(param) for param in self._params()]
        return kept

    def __setstate__(self, kept):
        states = kept.pop("_states")
        self.__dict__.update(kept)
        self._states = {id(param): (param, state) for param, state in zip(self._params(), states) if state is not None}

    def __repr__(self):
        groups = ", ".join(f"{len(group['params'])} params" for group in self.param_groups)
        return f"{type(self).__name__}(groups=[{groups}], defaults={self.defaults})"

    @property
    def state_dtype(self):
        """``None``, ``"int8"`` or ``"bf16"``, fixed at construction: it decides the state's layout."""
        return self._state_dtype

    @property
    def state(self):
        """Each parameter's state dict (torch's keys), in the order of ``step``'s gradients."""
        return [self._state_of(param) for param in self._params()]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a dict with ``"params"`` and per-group hyperparameters; the rest take the defaults.

        Raises ``TypeError``/``ValueError`` for an unknown or bad hyperparameter, a parameter
        that cannot be updated in place, or one that another group already holds.
        """
        where = f"param_groups[{len(self.param_groups)}]"
        if not isinstance(param_group, dict):
            raise TypeError(f"{where} must be a dict, got {type(param_group).__name__}")
        params = group_params(param_group, where)
        overrides = {key: value for key, value in param_group.items() if key != "params"}
        unknown = sorted(set(overrides) - set(self.hyperparameters), key=str)
        if unknown:
            raise TypeError(f"{where} has unknown hyperparameter {unknown[0]!r} for {self.spec.name}")
        seen = {id(param) for param in self._params()}
        for index, param in enumerate(params):
            check_param(param, f"{where}['params'][{index}]")
            if id(param) in seen:
                raise ValueError(
                    f"{where}['params'][{index}] is already optimized: a parameter is listed twice"
                )
            seen.add(id(param))
        hyperparameters = self.checked_hyperparameters({**self.defaults, **overrides}, where)
        group = {"params": params, **hyperparameters, **self.spec.group_state}
        self.param_groups.append(group)
        if self.spec.eager_state:
            for param in params:
                self._init_state(param, group)

    def checked_hyperparameters(self, hyperparameters, where):
        """Check ``hyperparameters`` with the spec and return them as floats, bools and pairs."""
        try:
            self.spec.validate(hyperparameters)
            self.spec.check_group({**self.spec.defaults, **hyperparameters})
        except (TypeError, ValueError) as error:
            raise type(error)(f"{where}: {error}") from None
        return canonical({**self.spec.defaults, **self.spec.group_state}, hyperparameters)

    @one_at_a_time
    def step(self, grads: Iterable[np.ndarray | None]) -> None:
        """Update every parameter in place with its gradient.

        ``grads`` lists one array per parameter, in order across groups; a ``None`` entry
        leaves its parameter (and its step count) alone. Everything is checked before
        anything changes; the gradients are never modified. Steps from several threads run
        one at a time.
        """
        if isinstance(grads, (np.ndarray, set, frozenset, dict)) or not hasattr(grads, "__iter__"):
            raise TypeError(f"grads must be a list with one array per parameter, got {type(grads).__name__}")
        grads = list(grads)
        self.spec.check_train_mode(self.param_groups)
        if self.nonfinite_grads == "propagate" and self._plan is not None and self._plan.step(self, grads):
            return
        batches = self._checked_batches(grads)
        if self.nonfinite_grads == "skip":
            culprit = first_nonfinite((where, grad) for _, _, entries in batches for where, _, grad in entries)
            if culprit is not None:
                self.skipped_steps += 1
                warn_skipped(culprit, stacklevel=3)  # step is wrapped by one_at_a_time
                return
        for group, arguments, entries in batches:
            count = self.spec.group_count(group)
            if entries:
                params = [param for _, param, _ in entries]
                self._update_group(group, arguments, params, [grad for _, _, grad in entries], count)
        self._plan = StepPlan.build(self, grads)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of the hyperparameters and state as a flat dict of arrays with string keys.

        ``np.savez(f, **opt.state_dict())`` saves it; see :mod:`adamkit.numpy._state_dict`
        for the keys.
        """
        return _state_dict.flatten(self, self.state)

    def export_state_dict(self) -> dict[str, np.ndarray]:
        """:meth:`state_dict` with compact state decoded to float32 arrays, without the scales.

        It is what an optimizer with ``state_dtype=None`` saves, and loads into any optimizer of
        the same class (``state_dtype="int8"`` quantises it again), as the torch front end's
        ``export_torch_state_dict()`` does for ``torch.optim``.
        """
        return _state_dict.flatten(self, [_state_layout.exported(state) for state in self.state])

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict` (e.g. ``dict(np.load(f))``).

        Everything is checked first: the number and sizes of groups, every key, every
        hyperparameter, and that each state array has its parameter's shape. A state dict that
        does not fit raises ``ValueError`` and changes nothing. State is converted to the layout
        this optimizer holds it in, as the torch front end does: cast to the dtype of its
        parameter, or, under ``state_dtype``, quantised or rounded to bfloat16 (to nearest);
        compact state of that very layout loads bit for bit, and other compact state is
        decoded first.
        """
        hyperparameters, states = _state_dict.parse(self, state_dict)
        for group, values in zip(self.param_groups, hyperparameters):
            group.update(values)
        self._states = {id(param): (param, state) for param, state in zip(self._params(), states)}

    def _params(self):
        return [param for group in self.param_groups for param in group["params"]]

    def _held_state(self, param):
        """``param``'s state dict, or ``None`` if it has none yet."""
        held, state = self._states.get(id(param), (None, None))
        return state if held is param else None

    def _state_of(self, param):
        state = self._held_state(param)
        if state is None:
            state = {}
            self._states[id(param)] = (param, state)
        return state

    def _checked_batches(self, grads):
        """Each group with its rule's arguments (:func:`~adamkit.numpy._hyperparameters.rule_arguments`)
        and its ``(where, param, grad)`` entries, raising before anything changes."""
        count = sum(len(group["params"]) for group in self.param_groups)
        if len(grads) != count:
            raise ValueError(f"step() got {len(grads)} gradients for {count} parameters")
        grads = iter(grads)
        seen = set()
        batches, states = [], []
        for g, group in enumerate(self.param_groups):
            try:
                arguments = rule_arguments(self.spec, group)  # a hyperparameter may have been set directly
            except (TypeError, ValueError) as error:
                raise type(error)(f"param_groups[{g}]: {error}") from None
            entries = []
            for index, param in enumerate(group["params"]):
                where = f"param_groups[{g}]['params'][{index}]"
                check_param(param, where)
                if id(param) in seen:
                    raise ValueError(f"{where} is listed twice")
                seen.add(id(param))
                grad = next(grads)
                if grad is not None:
                    check_grad(grad, param, where)
                    entries.append((where, param, grad))
            states += self._check_states(group, entries)
            batches.append((group, arguments, entries))
        stepped = [entry for _, _, entries in batches for entry in entries]
        _check_apart(stepped, states)
        return batches

    def _check_states(self, group, entries):
        """Raise ``ValueError`` unless the state of each stepped parameter holds a step count it
        can count up and the group's slots as its layout does (:mod:`adamkit.numpy._state_layout`);
        return ``(where, state, names)`` for each of these states, with the names of the arrays in
        it that the step writes.

        The slots kept in the parameters' dtypes are checked together in C first; one by one,
        in Python, only if that fails, and always for compact state.
        """
        keys = [slot.key for slot in self.spec.active_slots(group)]
        plain_arrays, plain_params, held_states = [], [], []
        for where, param, _ in entries:
            state = self._held_state(param)
            if state is None:
                continue
            for key in ("step", *(slot.key for slot in self.spec.scalar_state)):
                _state_layout.check_step(state, where, key)
            layout = _state_layout.layout(param, self._state_dtype)
            if layout is None and self.spec.elementwise:  # checked in C against their parameter's shape
                present = [state[key] for key in keys if key in state]
                plain_arrays += present
                plain_params += [param] * len(present)
            held_states.append((where, param, state, layout))
        plain_fit = plan_checks.arrays_fit(plain_arrays, plain_params)
        scalars = ["step", *(slot.key for slot in self.spec.scalar_state)]
        names = {layout: [*scalars, *_state_layout.slot_names(keys, layout)] for layout in _state_layout.STATE_DTYPES}
        written = []
        for where, param, state, layout in held_states:
            if layout is not None or not plain_fit or not self.spec.elementwise:
                shapes = self.spec.slot_shapes(group, param.shape)
                _state_layout.check_slots(state, param, [key for key in keys if key in shapes], layout, where, shapes)
            held = [name for name in names[layout] if name in state]
            if len(held) < len(names[layout]):  # the scales of missing codes are replaced, not written
                held = [name for name in held if coded_slot(name) is None or codes_key(coded_slot(name)) in state]
            written.append((where, state, held))
        return written

    def _init_state(self, param, group):
        state = self._state_of(param)
        if self.spec.counts_steps and "step" not in state:
            state["step"] = np.zeros((), dtype=np.float32)
        for slot in self.spec.scalar_state:
            # float32, as torch keeps its scalar state (mu_product *= mu rounds to it).
            state.setdefault(slot.key, np.array(slot.initial_value(group), dtype=np.float32))
        held = _state_layout.layout(param, self._state_dtype)
        shapes = self.spec.slot_shapes(group, param.shape)
        for slot in self.spec.active_slots(group):
            fill = slot.initial_value(self.defaults)  # torch's: the constructor's, whatever the group says
            if not _state_layout.holds(state, slot.key, held) and fill is not None and slot.key in shapes:
                state.update(_state_layout.new_slot(param, slot.key, fill, held, shapes[slot.key]))
        return state

    def _update_group(self, group, arguments, params, grads, group_count):
        keys = [slot.key for slot in self.spec.active_slots(group)]
        names = {layout: _state_layout.slot_names(keys, layout) for layout in _state_layout.STATE_DTYPES}
        buckets = _stepping.buckets(params, self._state_dtype)
        layouts = {index: held for (held, _), picked in buckets.items() for index in picked}
        states, steps, slots = [], [], []
        for index, param in enumerate(params):
            state = self._init_state(param, group)
            if self.spec.counts_steps:
                state["step"] += 1
                steps.append(self.spec.count(state, state["step"].item(), arguments))
            else:
                steps.append(group_count)
            states.append(state)
            arrays = {key: value for key, value in state.items() if key not in SCALAR_STATE_KEYS}
            # A state array the kernels cannot take as it is (strided, unaligned) is stepped
            # through a copy, written back below.
            odd = [name for name in names[layouts[index]] if name in arrays and not ready(arrays[name])]
            arrays.update({name: arrays[name].copy() for name in odd})
            slots.append(arrays)
        # The kernels read contiguous memory; a strided gradient is copied once.
        grads = [np.ascontiguousarray(grad) for grad in grads]
        for (held, _), picked in buckets.items():
            columns = ([column[i] for i in picked] for column in (params, grads, slots, steps))
            _stepping.update(self.spec, arguments, held, *columns)
        for state, arrays in zip(states, slots):
            for key, array in arrays.items():
                held = state.setdefault(key, array)
                if held is not array:
                    held[...] = array


def _check_apart(stepped, states):
    """Raise ``ValueError`` naming two arrays of a step whose memory overlaps where the step
    writes one of them (:func:`adamkit.kernels.plan_checks.first_overlap`): it writes each parameter
    of ``stepped`` (``(where, param, grad)``) and each array ``state[name]`` of ``states``
    (``(where, state, names)``), and reads each gradient."""
    written = [param for _, param, _ in stepped] + [state[name] for _, state, names in states for name in names]
    pair = plan_checks.first_overlap(written + [grad for _, _, grad in stepped], len(written))
    if pair is not None:
        described = (
            [where for where, _, _ in stepped]
            + [f"the state {name!r} of {where}" for where, _, names in states for name in names]
            + [f"the gradient of {where}" for where, _, _ in stepped]
        )
        first, second = pair
        raise ValueError(f"{described[second]} shares memory with {described[first]}, which the step writes")


def _constructor_signature(cls):
    """``(params, <positional>..., *, <the other hyperparameters>..., nonfinite_grads="propagate",
    state_dtype=None)``."""
    Parameter = inspect.Parameter
    defaults = cls.spec.defaults
    keyword_only = [name for name in cls.hyperparameters if name not in cls.positional]
    return inspect.Signature(
        [Parameter("params", Parameter.POSITIONAL_OR_KEYWORD)]
        + [Parameter(name, Parameter.POSITIONAL_OR_KEYWORD, default=defaults[name])
           for name in cls.positional]
        + [Parameter(name, Parameter.KEYWORD_ONLY, default=defaults[name]) for name in keyword_only]
        + [Parameter("nonfinite_grads", Parameter.KEYWORD_ONLY, default="propagate")]
        + [Parameter("state_dtype", Parameter.KEYWORD_ONLY, default=None)]
    )
