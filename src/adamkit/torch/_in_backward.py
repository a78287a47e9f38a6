"""``step_in_backward=True``: each parameter stepped as soon as ``backward`` has accumulated its
gradient, then its gradient freed, so that no full set of gradients ever exists.

Every parameter that requires grad gets a hook (``Tensor.register_post_accumulate_grad_hook``)
that holds only a weak reference to the optimizer. When the hook fires, the parameter is
stepped alone with its group's current hyperparameters (a scheduler's ``lr`` applies to the
next backward), through the same path as :meth:`~adamkit.torch.Optimizer.step`: one kernel
call through a cached plan and a step counter of the parameter's own
(:class:`~adamkit.torch._in_backward.ParamKey`).
The kernels give the same bits whether tensors are stepped one by one or in a list, so the
training is the one without the option, bit for bit; but for ``state_dtype="bf16"``, whose
stochastic rounding is seeded by a parameter's position among those stepped together: alone,
each is first (as reproducible, other bits). The optimizer must be kept referenced: once it
is collected, its hooks are removed and gradients accumulate again. A parameter that does not
require grad when it joins gets no hook.

- ``with optimizer.accumulating():`` the hooks leave gradients to accumulate; the first
  backward after the block steps with the sum (gradient accumulation over micro-batches).
- ``max_grad_norm`` clips each gradient by its own norm just before its step, exactly as
  ``torch.nn.utils.clip_grad_norm_`` does on that one tensor. A global norm cannot be: it needs
  every gradient before the first step. ``clip_grad_norm_`` called after such a backward finds
  no gradients and returns 0 (torch's own behaviour for an empty list, which adamkit cannot
  intercept without patching torch).
- ``step()`` evaluates its closure (whose backward steps the parameters) and steps what
  gradients remain (those set by hand), as without the option; ``zero_grad()`` is torch's.
- Refused with a precise error: ``nonfinite_grads="skip"`` (its all-or-nothing decision needs
  every gradient), ``differentiable=True`` and ``capturable=True``, torch.distributed with more
  than one process (a hook would step before DDP's all-reduce) and sharded parameters
  (DTensor), a rule whose group advances once per step (Schedule-Free AdamW), a parameter
  stepped in backward by another optimizer, and ``torch.amp.GradScaler``
  (``scaler.step`` raises: each gradient was stepped while still scaled).
"""

import contextlib
import weakref

import torch
from torch.utils.weak import WeakIdKeyDictionary

from adamkit.kernels import plan_checks
from adamkit.step_lock import lock_of
from adamkit.torch._local_shard import is_distributed
from adamkit.validation import check_bool

# Which optimizer steps each parameter in backward (a weak reference, for the error message).
_OWNERS = WeakIdKeyDictionary()


class ParamKey(int):
    """The key of one parameter's cached plan and step counter in the optimizer's tables.

    It reads as its group's index, for the messages the step's checks write, and is equal only
    to the key of the same parameter, so it never takes the place of the group's own entry."""

    def __new__(cls, group_index, param_index):
        key = super().__new__(cls, group_index)
        key.param_index = param_index
        return key

    def __eq__(self, other):
        return isinstance(other, ParamKey) and int(self) == int(other) and self.param_index == other.param_index

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((int(self), self.param_index, ParamKey))


class _Hooks:
    """An optimizer's hooks: their handles, where each parameter is, and the accumulation depth."""

    def __init__(self):
        self.handles = []
        self.where = {}  # id(param) -> ParamKey
        self.accumulating = 0
        self.validated = {}  # group index -> (its values when last checked in full, the rule's arguments)


class _StepHook:
    """The hook registered on every parameter: steps it through a weak reference."""

    __slots__ = ("_optimizer",)

    def __init__(self, optimizer):
        self._optimizer = weakref.ref(optimizer)

    def __call__(self, param):
        optimizer = self._optimizer()
        if optimizer is not None:
            _step_param(optimizer, param)


class InBackward:
    """What ``step_in_backward`` adds to :class:`adamkit.torch.Optimizer` (a mixin before
    ``torch.optim.Optimizer``): the hooks kept in step with the groups, ``accumulating()``,
    and the option's survival through ``copy.deepcopy`` and pickling."""

    @contextlib.contextmanager
    def accumulating(self):
        """Under this block, backward accumulates gradients instead of stepping; the first
        backward after it steps each parameter with the accumulated gradient, and frees it.
        Raises ``RuntimeError`` without ``step_in_backward=True``."""
        hooks = self.__dict__.get("_in_backward")
        if hooks is None:
            raise RuntimeError(
                "accumulating() needs step_in_backward=True; without it, gradients accumulate until step()"
            )
        hooks.accumulating += 1
        try:
            yield self
        finally:
            hooks.accumulating -= 1

    def add_param_group(self, param_group):
        if self.__dict__.get("_in_backward") is not None and isinstance(param_group, dict):
            _check_group(self, {**self.defaults, **param_group}, len(self.param_groups))
        super().add_param_group(param_group)
        if self.__dict__.get("_in_backward") is not None:
            _register(self, len(self.param_groups) - 1)

    def __getstate__(self):
        return {
            **super().__getstate__(),
            "step_in_backward": self.__dict__.get("step_in_backward", False),
            "max_grad_norm": self.__dict__.get("max_grad_norm"),
        }

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("step_in_backward", False)
        self.__dict__.setdefault("max_grad_norm", None)
        self._in_backward = None
        if self.step_in_backward:
            for group_index, group in enumerate(self.param_groups):
                _check_group(self, group, group_index)  # a shallow copy shares the parameters
            _start(self)
            for group_index in range(len(self.param_groups)):
                _register(self, group_index)


def configure(optimizer, defaults, step_in_backward, max_grad_norm):
    """Check the options and make ``optimizer`` ready to register hooks as its groups are
    added; called before ``torch.optim.Optimizer.__init__`` adds them."""
    check_bool("step_in_backward", step_in_backward)
    if max_grad_norm is not None:
        if (
            isinstance(max_grad_norm, bool)
            or not isinstance(max_grad_norm, (int, float))
            or not 0 < max_grad_norm < float("inf")
        ):
            raise ValueError(f"Invalid max_grad_norm: {max_grad_norm!r} (must be None or a finite number > 0)")
        if not step_in_backward:
            raise ValueError(
                f"max_grad_norm={max_grad_norm!r} clips each gradient before its step in backward, so it needs "
                "step_in_backward=True; without it, call torch.nn.utils.clip_grad_norm_ before step()"
            )
    optimizer.step_in_backward = step_in_backward
    optimizer.max_grad_norm = max_grad_norm
    optimizer._in_backward = None
    if not step_in_backward:
        return
    if optimizer.nonfinite_grads == "skip":
        raise ValueError(
            "nonfinite_grads='skip' cannot be used with step_in_backward=True: skipping is all or nothing over "
            "a step, but in backward each parameter is stepped before the later gradients exist"
        )
    if optimizer.spec.advance_group is not None:
        raise ValueError(
            f"step_in_backward=True cannot be used with {optimizer.spec.name}: its group advances once per step "
            "(the schedule's k, weight sum and averaging weight), but in backward each parameter is stepped alone"
        )
    if (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    ):
        raise ValueError(
            f"step_in_backward=True cannot be used with torch.distributed over {torch.distributed.get_world_size()} "
            "processes: a parameter would be stepped in backward before its gradient is all-reduced (DDP) "
            "or with a shard's gradient (ZeroRedundancyOptimizer, FSDP)"
        )
    _start(optimizer)


def _start(optimizer):
    hooks = optimizer._in_backward = _Hooks()
    optimizer._step_supports_amp_scaling = True  # so that GradScaler.step reaches check_step
    weakref.finalize(optimizer, _remove, hooks.handles)


def _remove(handles):
    for handle in handles:
        handle.remove()


def check_step(optimizer):
    """Raise ``RuntimeError`` where ``optimizer.step()`` cannot do what it is asked with
    ``step_in_backward=True``: under ``accumulating()``, or driven by ``torch.amp.GradScaler``."""
    hooks = optimizer.__dict__.get("_in_backward")
    if hooks is None:
        return
    if getattr(optimizer, "grad_scale", None) is not None or getattr(optimizer, "found_inf", None) is not None:
        # GradScaler deletes these after a step that returns; this one raises.
        optimizer.__dict__.pop("grad_scale", None)
        optimizer.__dict__.pop("found_inf", None)
        raise RuntimeError(
            "torch.amp.GradScaler cannot drive an optimizer with step_in_backward=True: each parameter was "
            "stepped during backward with its gradient still scaled, before any check for infinities. "
            "Use bfloat16 autocast (no scaler) or step_in_backward=False"
        )
    if hooks.accumulating:
        raise RuntimeError(
            "step() was called under accumulating(): with step_in_backward=True the step happens in the "
            "first backward after the accumulating() block"
        )


def _check_flags(group, group_index):
    for flag in ("differentiable", "capturable"):
        if group.get(flag):
            raise ValueError(
                f"param_groups[{group_index}]: {flag}=True cannot be used with step_in_backward=True, "
                "whose steps run inside backward, outside any graph"
            )


def _check_group(optimizer, group, group_index):
    """Raise where a group cannot be stepped in backward (see the module docstring)."""
    _check_flags(group, group_index)
    params = group.get("params")
    listed = [params] if isinstance(params, torch.Tensor) else list(params) if isinstance(params, (list, tuple)) else []
    seen = set()
    for index, param in enumerate(listed):
        where = f"param_groups[{group_index}]['params'][{index}]"
        if not isinstance(param, torch.Tensor):
            continue  # torch's own check raises
        if id(param) in seen:
            raise ValueError(
                f"{where} is listed twice: with step_in_backward=True a parameter is stepped once per backward"
            )
        seen.add(id(param))
        if is_distributed(param):
            raise TypeError(
                f"{where} is sharded (a DTensor, as FSDP2 makes): step_in_backward=True would step it with a "
                "shard's gradient before the gradients are reduced"
            )
        owner = _OWNERS.get(param)
        if owner is not None and owner() is not None and owner() is not optimizer:
            raise ValueError(
                f"{where} is already stepped in backward by another optimizer ({type(owner()).__name__}); "
                "release that optimizer (del it) first"
            )


def _register(optimizer, group_index):
    """Register the hook on the parameters of ``param_groups[group_index]`` that require grad."""
    hooks, hook = optimizer._in_backward, _StepHook(optimizer)
    for index, param in enumerate(optimizer.param_groups[group_index]["params"]):
        if not param.requires_grad:
            continue  # backward never gives it a gradient; step() steps one set by hand
        hooks.where[id(param)] = ParamKey(group_index, index)
        hooks.handles.append(param.register_post_accumulate_grad_hook(hook))
        _OWNERS[param] = weakref.ref(optimizer)


def _step_param(optimizer, param):
    """The hook's work: clip, step ``param`` alone with its group's current hyperparameters,
    free its gradient."""
    hooks = optimizer._in_backward
    key = hooks.where.get(id(param)) if hooks is not None else None
    if key is None or hooks.accumulating or param.grad is None:
        return
    with lock_of(optimizer):
        group = optimizer.param_groups[key]
        _check_flags(group, int(key))
        if optimizer.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(param, optimizer.max_grad_norm)
        single = {**group, "params": [param]}
        try:
            if not _step_through_plan(optimizer, hooks, key, group, single):
                optimizer._step_prepared([key], _prepared(optimizer, hooks, key, group, single))
        except (TypeError, ValueError, RuntimeError) as error:
            raise _located(error, key) from None
        param.grad = None


def _step_through_plan(optimizer, hooks, key, group, single):
    """Step the parameter through its cached plan, if the plan holds and the group holds the
    very values its last full check saw (a scheduler's new ``lr`` is a new object); then the
    rule's arguments made from those values are reused too. Return whether it stepped."""
    plan, validated = optimizer._plans.get(key), hooks.validated.get(int(key))
    if plan is None or validated is None or not plan_checks.same_objects(list(group.values()), validated[0]):
        return False
    pointers = plan.gradient_pointers(single, optimizer.state)
    if pointers is None:
        return False
    if optimizer.spec.counts_steps:
        optimizer._steps[key].check(key, single, plan.params, optimizer.state)
    optimizer._group_counts[key] = optimizer.spec.group_count(single)
    plan.step(validated[1], pointers, optimizer._counts(key, single, plan.states))
    return True


def _prepared(optimizer, hooks, key, group, single):
    """The one-parameter batch to step in full; its group's values are kept for
    :func:`_step_through_plan` when each is an immutable plain value (a tensor, or a tuple holding
    one, may change in place, so a group holding one is checked in full every time)."""
    values = list(group.values())
    batches = optimizer._prepared([(key, single)])
    if all(_immutable(value) for value in values if value is not group["params"]):
        hooks.validated[int(key)] = (values, optimizer.spec.rule_arguments(group))
    else:
        hooks.validated.pop(int(key), None)
    return batches


def _immutable(value):
    """Whether ``value`` is a plain value that cannot change in place: a number, a string,
    ``None``, or a tuple of them."""
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return type(value) in (bool, int, float, str, type(None))


def _located(error, key):
    """``error`` with the parameter named by its index in its group, not in the one-parameter
    group it was stepped as."""
    alone, listed = f"param_groups[{int(key)}]['params'][0]", f"param_groups[{int(key)}]['params'][{key.param_index}]"
    message = str(error)
    if alone not in message or key.param_index == 0:
        return error
    try:
        return type(error)(message.replace(alone, listed))
    except TypeError:  # an exception type that takes other arguments
        return error
