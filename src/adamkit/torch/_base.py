"""The base of adamkit's drop-in ``torch.optim.Optimizer`` subclasses.

It only adapts containers: it checks hyperparameters, lays out state under torch's keys,
and hands NumPy views of the tensors to a backend that applies the rule.
"""

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch.optim.optimizer import ParamsT, _device_dtype_check_for_fused, _get_scalar_dtype

from adamkit.compact.policy import COMPACT_STATE_DTYPES, STATE_DTYPES, check_compact_state
from adamkit.kernels import native
from adamkit.nonfinite import POLICIES, warn_skipped
from adamkit.specs import Spec
from adamkit.torch import _backend as backend
from adamkit.torch import _checks as checks
from adamkit.torch import _compact_state as compact_state
from adamkit.torch import _kahan as kahan
from adamkit.torch import _torch_step as torch_step
from adamkit.torch import _huge_pages, _in_backward, _rule_name, _sparse
from adamkit.torch._arrays import SUPPORTED_DTYPES
from adamkit.torch._cached_plan import GroupPlan
from adamkit.torch._cached_sparse_plan import SparsePlan
from adamkit.torch._checks import OVERLAP, MismatchError, overlaps_itself
from adamkit.torch._finite import first_nonfinite
from adamkit.torch._local_shard import local
from adamkit.torch._param_lists import index_of, pick, rounds
from adamkit.torch._state_dict import loadable_state_dict, step_dtype as _step_dtype
from adamkit.torch._step_counters import PackedSteps
from adamkit.torch._step_wrapper import profile_hook_step, without_grad
from adamkit.validation import check_choice

# Marks a group that torch's own implementation steps (:mod:`adamkit.torch._torch_step`).
_TORCH = object()


class Optimizer(_in_backward.InBackward, _rule_name.NamedState, torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose math is the :class:`~adamkit.rules._spec.Spec` ``spec``.

    ``nonfinite_grads="skip"`` is an opt-in policy: when any gradient holds NaN or infinity the
    whole step is skipped, a :class:`~adamkit.nonfinite.NonFiniteGradientWarning` names the
    parameter, and ``skipped_steps`` counts it. The default ``"propagate"`` does what torch does.

    ``state_dtype="fp32"`` (every optimizer) keeps the state of bfloat16 parameters in float32.
    ``state_dtype="int8"`` (the optimizers of :data:`adamkit.specs.COMPACT`) keeps the state of float32
    parameters of at least :data:`adamkit.compact.policy.MIN_QUANTIZED_NUMEL` elements 8-bit
    block-wise (:mod:`adamkit.compact.int8`), ``state_dtype="bf16"`` (the same optimizers) in bfloat16
    with stochastic rounding;
    :meth:`export_torch_state_dict` gives the float32 state ``torch.optim`` saves.

    bfloat16 parameters are stepped with Kahan summation unless ``kahan_summation=False``: a
    bfloat16 buffer per parameter, ``state["kahan_compensation"]``, keeps what rounding loses of
    each update (:mod:`adamkit.torch._kahan`), so that training without a float32 copy of the
    weights follows float32 training; it costs 2 bytes per parameter.

    ``step_in_backward=True`` steps each parameter inside ``backward`` as soon as its gradient is
    accumulated, then frees the gradient (:mod:`adamkit.torch._in_backward`).

    torch's implementation flags mean what they mean in torch. On the CPU the default,
    ``foreach=False`` and ``fused=True`` run adamkit's kernels (``fused=False`` its reference
    backend). ``foreach=True``, ``capturable=True``, ``differentiable=True``, ``fused=True`` off
    the CPU, and tensors off the CPU in groups that use none of adamkit's own options run
    torch.optim's implementation with the same flags (:mod:`adamkit.torch._torch_step`), bit for
    bit. adamkit's own options (``eps_hat``, ``state_dtype``, ``kahan_summation=True``,
    ``sparse_mode="dense"``) with ``foreach``, ``capturable`` or ``differentiable`` raise
    ``ValueError``.
    """

    spec: ClassVar[Spec] = None  # type: ignore[assignment]  # every subclass names its own

    def __init__(
        self,
        params: ParamsT,
        defaults: dict[str, Any],
        *,
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        check_choice("nonfinite_grads", nonfinite_grads, POLICIES)
        check_choice("state_dtype", state_dtype, STATE_DTYPES)
        check_compact_state(self.spec, state_dtype, type(self).__name__, "None or 'fp32'")
        if state_dtype is not None and defaults.get("fused") is False:
            raise ValueError(f"state_dtype={state_dtype!r} needs the fused kernels; it cannot be used with fused=False")
        kahan.check_setting(kahan_summation, defaults.get("fused"))
        self.state_dtype = state_dtype
        self.kahan_summation = kahan_summation
        self.spec.validate(defaults)
        torch_step.check_group(self, defaults)
        _sparse.check_mode(self.spec, defaults)
        if defaults.get("fused") and not native.available():
            raise ValueError("fused=True needs adamkit's C kernels, which were not built")
        self.nonfinite_grads = nonfinite_grads
        self.skipped_steps = 0
        self._steps: dict[int, PackedSteps] = {}
        self._plans: dict[int, GroupPlan | SparsePlan | None] = {}
        self._group_counts: dict[int, object] = {}
        _in_backward.configure(self, defaults, step_in_backward, max_grad_norm)
        super().__init__(params, defaults)
        if defaults.get("fused"):
            # torch's checks, after its checks of the groups.
            if defaults.get("differentiable"):
                raise RuntimeError("`fused` does not support `differentiable`")
            if defaults.get("foreach"):
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if self.spec.eager_state:
            for group in self.param_groups:
                for param in group["params"]:
                    self._init_state(param, group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, as torch does, but reject bad hyperparameters and Kahan summation that
        cannot be honoured. A parameter listed twice in a group gets torch's warning, and each
        step steps it twice, as torch's does."""
        if isinstance(param_group, dict):
            self.spec.validate(param_group)
            _sparse.check_mode(self.spec, param_group)
            params = param_group.get("params")
            if not isinstance(params, set) and params is not None:
                listed = [params] if isinstance(params, torch.Tensor) else list(params)
                param_group = {**param_group, "params": listed}
            torch_step.check_group(self, {**self.defaults, **param_group})
        super().add_param_group(param_group)

    def __getstate__(self):
        """torch's (defaults, state, param_groups) and adamkit's settings, so that a copy
        (``copy.deepcopy``, pickling) steps as the original: without its ``state_dtype`` a copy
        stepped 8-bit codes as float32 state, out of their bounds."""
        return {
            **super().__getstate__(),
            "state_dtype": self.state_dtype,
            "kahan_summation": self.kahan_summation,
            "nonfinite_grads": self.nonfinite_grads,
            "skipped_steps": self.skipped_steps,
        }

    def __setstate__(self, state):
        # The class's own defaults: torch's __setstate__ adds "differentiable" to every
        # optimizer's, which a group of a class without that flag (Adafactor) must not get.
        defaults = dict(state.get("defaults", self.__dict__.get("defaults", {})))
        super().__setstate__(state)
        self.__dict__.setdefault("nonfinite_grads", "propagate")
        self.__dict__.setdefault("skipped_steps", 0)
        self.__dict__.setdefault("state_dtype", None)
        self.__dict__.setdefault("kahan_summation", None)
        self._steps, self._plans, self._group_counts = {}, {}, {}
        for group in self.param_groups:
            for key, value in defaults.items():
                group.setdefault(key, value)
            for param in group["params"]:
                state = self.state.get(param, {})
                for key in ("step", *(slot.key for slot in self.spec.scalar_state)):
                    value = state.get(key)
                    if value is not None and not torch.is_tensor(value):
                        state[key] = torch.tensor(float(value), dtype=_step_dtype())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load like torch, after checking that every state tensor fits its parameter.

        A state dict that does not fit raises ``ValueError`` and changes nothing. With
        ``state_dtype="int8"`` or ``"bf16"`` float32 state (a ``torch.optim`` checkpoint) is
        converted, and compact state loads as it was saved. Kahan compensation buffers load
        for the parameters that use them and are dropped for the others; a parameter whose
        checkpoint has none starts from zero compensation.
        """
        state_dict = loadable_state_dict(self, state_dict)
        widened = self._widened_state(state_dict)
        super().load_state_dict(state_dict)
        for param, values in widened.items():
            self.state[param].update(values)
        # The kernels read state by data pointer: keep every state tensor contiguous.
        for state in self.state.values():
            if not isinstance(state, dict):
                continue  # an entry a hook stored (torch's own tests store a flag)
            for key, value in state.items():
                if torch.is_tensor(value) and not value.is_contiguous():
                    state[key] = value.contiguous()
        kahan.drop_unused_buffers(self)
        if self.state_dtype is not None:
            for group in self.param_groups:
                keys = [slot.key for slot in self.spec.active_slots(group)]
                for param in group["params"]:
                    state = self.state.get(param, {})
                    if compact_state.quantizes(param, self.state_dtype) and all(k in state for k in keys):
                        compact_state.quantize_state(state, keys, self.state_dtype)

    def _widened_state(self, state_dict):
        """Copies of the saved state that torch's loading would cast to the parameter's dtype:
        8-bit codes and scales, and float32 state of bfloat16 parameters (``state_dtype="fp32"``,
        or to be encoded in 8 bits) (``compact_state.uncast_copies``)."""
        widened, slot_keys = {}, {slot.key for slot in self.spec.slots}
        for group, saved_group in zip(self.param_groups, state_dict["param_groups"]):
            for param, index in zip(group["params"], saved_group["params"]):
                saved = state_dict["state"].get(index, {})
                if saved:
                    fp32 = backend.slot_dtype(param, self.state_dtype) is torch.float32
                    widened[param] = compact_state.uncast_copies(param, saved, slot_keys, fp32, self.state_dtype)
        return widened

    def export_torch_state_dict(self) -> dict[str, Any]:
        """The ``state_dict`` as ``torch.optim`` saves it: quantised state decoded to float32,
        and without Kahan compensation buffers.

        It loads into the ``torch.optim`` optimizer of the same name, and back into any adamkit
        optimizer (which then starts from zero compensation).
        """
        return kahan.without_buffers(compact_state.to_float32_state_dict(self.state_dict()))

    def _init_state(self, param, group):
        new = {}
        if self.spec.counts_steps:
            new["step"] = _initial_step(param, group)
        for slot in self.spec.scalar_state:
            new[slot.key] = _initial_step(param, group) + slot.initial_value(group)
        state = self.state.get(param, {})
        if compact_state.quantizes(param, self.state_dtype) and (not state or checks.state_layout(param, state) != checks.FULL):
            # A slot that becomes active later (amsgrad switched on) joins the compact layout.
            keys = [slot.key for slot in self.spec.active_slots(group) if not compact_state.holds(state, slot.key)]
            self.state[param].update({**{k: v for k, v in new.items() if k not in state}, **compact_state.new_state(param, keys, self.state_dtype)})
            return
        shapes = self.spec.slot_shapes(group, param.shape)
        for slot in self.spec.active_slots(group):
            fill = slot.initial_value(self.defaults)  # torch's: the constructor's, whatever the group says
            if fill is not None and slot.key in shapes:
                # A complex parameter is a pair of reals: both parts start at the fill value.
                value = complex(fill, fill) if param.is_complex() else fill
                new[slot.key] = _state_like(param, value, backend.slot_dtype(param, self.state_dtype), shapes[slot.key])
        missing = {key: value for key, value in new.items() if key not in self.state.get(param, {})}
        if missing:
            self.state[param].update(missing)
            if _has_sparse_grad(param):
                _huge_pages.collapse(param.detach())

    def _stepped_params(self, group, group_index):
        """The group's parameters that have a gradient, after checking that each can be stepped."""
        stepped = [param for param in group["params"] if param.grad is not None]
        for param in stepped:
            grad = param.grad
            if grad.layout != torch.strided and _sparse.accepts(self.spec):
                where = f"param_groups[{group_index}]['params'][{index_of(param, group['params'])}]"
                _sparse.check_grad(self.spec, param, group, where)
                if compact_state.quantizes(param, self.state_dtype):
                    raise TypeError(f"{where} has a sparse gradient, which state_dtype={self.state_dtype!r} does not take")
                continue
            if group.get("fused") and backend.on_kernel_device(param):
                _device_dtype_check_for_fused(param)  # torch's fused=True takes floating point only
            dtype = param.dtype
            if (
                grad.dtype is not dtype
                or dtype not in SUPPORTED_DTYPES
                or grad.layout is not torch.strided
                or param.device != grad.device
                or group.get("fused") and not backend.on_kernel_device(param)
                or self.state_dtype in COMPACT_STATE_DTYPES and not backend.on_kernel_device(param)
                or grad.shape != param.shape
                or dtype is torch.bfloat16 and not backend.takes_bfloat16(param, group.get("fused"))
            ):
                self._reject(group_index, param, group)
        self._check_tensors(group_index, group, stepped)
        return stepped

    def _check_tensors(self, group_index, group, stepped):
        """Check every state tensor the step of ``stepped`` will touch, and that nothing it
        writes shares memory with anything else it touches (:mod:`adamkit.torch._checks`)."""
        names = {id(param): index for index, param in enumerate(group["params"])}
        unique = list({id(param): param for param in stepped}.values())
        written, read = [], []
        for param in unique:
            where = f"param_groups[{group_index}]['params'][{names[id(param)]}]"
            shard = local(param)
            if overlaps_itself(shard):
                raise MismatchError(f"{where} has elements that share one memory location (a stride of 0): {OVERLAP}")
            checks.check_storage(where, shard)
            if param.grad.layout == torch.strided:
                checks.check_storage(f"the gradient of {where}", local(param.grad))
            state = self.state.get(param, {})
            expected = checks.expected_slots(self.spec, group, param, state)
            checks.check_state(where, param, state, expected)
            if not backend.on_kernel_device(param):
                continue  # stepped by torch's operations, not by pointer
            if shard.is_contiguous():
                written.append((where, checks.byte_range(shard)))
            elif not (param.dtype is torch.bfloat16 or compact_state.quantizes(param, self.state_dtype)):
                continue  # stepped through NumPy views; else through a contiguous copy, its state by pointer
            written += [(f"{where}'s state[{key!r}]", checks.byte_range(local(state[key]))) for key in expected if key in state]
            grad = param.grad
            if grad.layout == torch.strided and local(grad).is_contiguous():
                read.append((f"the gradient of {where}", checks.byte_range(local(grad))))
        checks.WrittenMemory(written).check_reads(read)

    def _reject(self, group_index, param, group):
        """Raise the precise error for a parameter that ``_stepped_params`` refused."""
        where = f"param_groups[{group_index}]['params'][{index_of(param, group['params'])}]"
        grad = param.grad
        if grad.layout != torch.strided:
            raise TypeError(_sparse.rejection(self.spec, where))
        if param.device != grad.device:
            raise MismatchError(f"the gradient of {where} is on {grad.device}, but the parameter is on {param.device}")
        if not backend.on_kernel_device(param):
            own = torch_step.own_option(self, group)
            option = f"fused=True with {own}" if group.get("fused") and own else own or "fused=True"
            raise TypeError(f"{where} is on {param.device}: {option} needs CPU tensors (adamkit's C kernels)")
        if param.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{where} has unsupported dtype {param.dtype}")
        if grad.dtype == param.dtype == torch.bfloat16 and grad.shape == param.shape:
            raise TypeError(
                f"{where} is bfloat16, which needs adamkit's C kernels (built, not disabled by "
                "fused=False)"
            )
        raise MismatchError(
            f"the gradient of {where} is {grad.dtype} {tuple(grad.shape)}, "
            f"but the parameter is {param.dtype} {tuple(param.shape)}"
        )

    def _first_nonfinite(self, batches):
        """Where the first gradient holding NaN or infinity is, or ``None``: one reduction over
        all gradients (:mod:`adamkit.torch._finite`)."""
        stepped = [(index, group, param) for index, (group, params, _) in enumerate(batches) for param in params]
        first = first_nonfinite([_sparse.values_of(param.grad) for _, _, param in stepped])
        if first is None:
            return None
        group_index, group, param = stepped[first]
        return f"param_groups[{group_index}]['params'][{index_of(param, group['params'])}]"

    profile_hook_step = staticmethod(profile_hook_step)

    @without_grad
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss.
        With ``step_in_backward=True`` the closure's backward steps the parameters, and the step
        steps only gradients that backward's hooks did not (:mod:`adamkit.torch._in_backward`)."""
        self.spec.check_train_mode(self.param_groups)
        _in_backward.check_step(self)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        batches = self._prepared(list(enumerate(self.param_groups)))
        if self.nonfinite_grads == "skip":
            culprit = self._first_nonfinite(batches)
            if culprit is not None:
                self.skipped_steps += 1
                # step is wrapped by without_grad, the hook wrapper and _untraced: 5 frames to the caller.
                warn_skipped(culprit, stacklevel=5)
                return loss
        self._step_prepared(range(len(batches)), batches)
        return loss

    def _prepared(self, keyed_groups):
        """:meth:`_prepare` of each ``(key, group)``, then the check of their step counts."""
        batches = [self._prepare(key, group) for key, group in keyed_groups]
        if self.spec.counts_steps:
            for (key, _), (group, stepped, _) in zip(keyed_groups, batches):
                self._steps.setdefault(key, PackedSteps()).check(key, group, stepped, self.state)
        return batches

    def _step_prepared(self, keys, batches):
        """Step the groups :meth:`_prepared` made ready, under their ``keys``."""
        grad_enabled = torch.is_grad_enabled()  # differentiable=True: torch's steps are differentiated
        for group_index, (group, stepped, grad_ptrs) in zip(keys, batches):
            self._group_counts[group_index] = self.spec.group_count(group)
            if grad_ptrs is _TORCH:
                self._plans[group_index] = None
                torch_step.step_group(self, group)
                continue
            torch._C._set_grad_enabled(False)
            try:
                if grad_ptrs is not None:
                    self._step_planned(group_index, group, grad_ptrs)
                elif stepped:
                    self._update_group(group_index, group, stepped)
            finally:
                torch._C._set_grad_enabled(grad_enabled)

    def _prepare(self, group_index, group):
        """``(group, params with gradients, their gradients' pointers if the group's plan holds,
        else None; or _TORCH if torch's own implementation steps the group)``.

        The group's hyperparameters are checked, and without a plan that holds every parameter
        too, so that bad input raises before any group is stepped.
        """
        try:
            self.spec.validate(group)  # a hyperparameter or flag may have been set directly
            torch_step.check_group(self, group)
        except (TypeError, ValueError) as error:
            raise type(error)(f"param_groups[{group_index}]: {error}") from None
        if torch_step.asks_for_torch(group):
            return group, [param for param in group["params"] if param.grad is not None], _TORCH
        plan = self._plans.get(group_index)  # a plan holds kernel-device tensors only
        grad_ptrs = plan.gradient_pointers(group, self.state) if plan is not None else None
        if grad_ptrs is not None:
            return group, plan.params, grad_ptrs
        with_grads = [param for param in group["params"] if param.grad is not None]
        if torch_step.serves_device(self, group, with_grads):
            return group, with_grads, _TORCH
        return group, self._stepped_params(group, group_index), None

    def _step_planned(self, group_index, group, grad_ptrs):
        plan = self._plans[group_index]
        plan.step(self.spec.rule_arguments(group), grad_ptrs, self._counts(group_index, group, plan.states))

    def _counts(self, group_index, group, states):
        """Count the step of every state of ``states``; return what the rule takes per tensor
        as ``step`` (:meth:`adamkit.rules._spec.Spec.count`), or the group's count of this step
        for a rule that counts per group (:meth:`adamkit.rules._spec.Spec.group_count`)."""
        if not self.spec.counts_steps:
            return [self._group_counts.get(group_index)] * len(states)
        steps = self._steps.setdefault(group_index, PackedSteps()).advance(states)
        if self.spec.advance is None:
            return steps
        return [self.spec.count(state, step, group) for state, step in zip(states, steps)]

    def _update_group(self, group_index, group, params):
        """Step ``params``; a parameter listed ``k`` times is stepped ``k`` times, as torch's
        for-loop does: in ``k`` rounds, since the kernels step a round's tensors in parallel."""
        listings = rounds(params)
        for round_params in listings:
            self._update_round(group_index, group, round_params)
        if len(listings) > 1:
            self._plans[group_index] = None

    def _update_round(self, group_index, group, params):
        expected = self._initial_keys(group)
        for param in params:
            state = self.state.get(param, {})
            if not all(compact_state.holds(state, key) for key in expected):
                self._init_state(param, group)
        states = [self.state[param] if param in self.state else {} for param in params]
        kahan.add_buffers(params, states, self.kahan_summation)
        steps = self._counts(group_index, group, states)
        hyperparameters = self.spec.rule_arguments(group)
        stepped, stepped_states = params, states
        if self.state_dtype in COMPACT_STATE_DTYPES:
            # Only an optimizer asked for compact state ever holds it (loads convert to float32).
            params, states, steps = compact_state.update_quantized(self.spec, hyperparameters, params, states, steps)
        fused = group.get("fused")
        sparse = [i for i, param in enumerate(params) if param.grad.layout != torch.strided]
        plan_class = SparsePlan if sparse and len(sparse) == len(stepped) else GroupPlan
        if not sparse:
            backend.update(self.spec, hyperparameters, params, states, steps, fused, self.state_dtype)
        else:
            sparse_set = set(sparse)
            dense = [i for i in range(len(params)) if i not in sparse_set]
            backend.update(self.spec, hyperparameters, *pick(dense, params, states, steps), fused, self.state_dtype)
            batch = pick(sparse, params, states, steps)
            _sparse.update(self.spec, hyperparameters, _sparse.mode_of(self.spec, group), *batch, fused)
        for param, state in zip(params, states):
            if state and param not in self.state:
                self.state[param] = state
        # GroupPlan also plans compact state; a lazy sparse plan holds full-precision state only.
        planned = (stepped, stepped_states) if plan_class is GroupPlan else (params, states)
        self._plans[group_index] = plan_class.build(self.spec, group, *planned, self.state) if len(planned[0]) == len(stepped) else None

    def _initial_keys(self, group):
        """The state keys every parameter of ``group`` has before its step: the step count and
        the slots that start filled (a slot the rule creates, SGD's momentum, comes later), but
        those a parameter's shape decides (Adafactor's), which come with its step."""
        keys = [slot.key for slot in self.spec.active_slots(group) if slot.fill is not None and slot.shape is None]
        keys += [slot.key for slot in self.spec.scalar_state]
        return keys + ["step"] if self.spec.counts_steps else keys


def _initial_step(param, group):
    """A zero ``step`` where torch puts it: on the parameter's device, float32 if fused, for
    torch's fused and capturable implementations off the kernel device; else on the CPU. Plus
    its fill, it is a scalar state (NAdam's ``mu_product``), which torch puts there too."""
    if not backend.on_kernel_device(param) and (group.get("fused") or group.get("capturable")):
        return torch.zeros((), dtype=_get_scalar_dtype(is_fused=group.get("fused")), device=param.device)
    return torch.tensor(0.0, dtype=_step_dtype())


def _has_sparse_grad(param):
    return param.grad is not None and param.grad.is_sparse


def _state_like(param, value, dtype=None, shape=None):
    """A state tensor like ``param`` (of ``dtype`` if given) filled with ``value``; for a
    parameter with a sparse gradient, advised onto huge pages (:mod:`adamkit.torch._huge_pages`).
    A slot of another ``shape`` than the parameter's (Adafactor's factors) is made contiguous."""
    if shape is not None and tuple(shape) != tuple(param.shape):
        return torch.full(shape, value, dtype=dtype or param.dtype, device=param.device)
    if _has_sparse_grad(param) and dtype is None:
        return _huge_pages.full_like(param, value)
    return torch.full_like(param, value, dtype=dtype, memory_format=torch.preserve_format)
