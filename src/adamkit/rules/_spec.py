"""What a rule's spec says, independent of the front end: the optimizer's hyperparameters, their
defaults and checks, the layout of its per-parameter state (torch's keys), and what the kernels,
the compact state, the diagnostics and the commands need to know about it.

Each rule module defines its spec beside its function; :data:`adamkit.rules.SPECS` lists them
all, and every other part of adamkit reads them there (:mod:`adamkit.specs`).
"""

import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from adamkit.validation import check_betas, check_bool, check_unit_interval


@dataclass(frozen=True)
class StateSlot:
    """One state tensor: its torch key, its initial fill value, when it exists, and its code.

    ``fill`` is a constant or a function of the optimizer's defaults (Adagrad's initial
    accumulator: torch.optim reads the constructor's, whatever a parameter group says);
    ``None`` means the slot starts empty and the rule creates it (SGD's momentum buffer).
    ``code`` is the dtype of the slot's 8-bit codes in compact state: ``np.int8`` for the
    signed map (values of either sign), ``np.uint8`` for the unsigned map (values >= 0), or
    ``None`` for a slot that is never kept compact.

    ``shape`` is the slot's shape as a function of its parameter's shape, ``None`` where a
    parameter of that shape has no such slot (Adafactor's factored ``row_var`` and ``col_var``
    for matrices, its full ``variance`` for vectors); left unset, the slot is per element, of
    the parameter's shape.
    """

    key: str
    fill: float | Callable[[dict], float] | None = 0.0
    when: Callable[[dict], bool] = lambda group: True
    code: type | None = None
    shape: Callable[[tuple[int, ...]], tuple[int, ...] | None] | None = None

    def initial_value(self, group):
        return self.fill(group) if callable(self.fill) else self.fill

    def shape_for(self, param_shape):
        """The slot's shape for a parameter of ``param_shape``, or ``None`` if it has none."""
        return tuple(param_shape) if self.shape is None else self.shape(tuple(param_shape))


@dataclass(frozen=True)
class Variant:
    """A setting of an optimizer that the commands run and show under ``label``: its
    hyperparameters besides the defaults (``settings``), and where it appears.

    ``compare`` and ``trajectories`` are its name in ``adamkit compare`` and ``adamkit
    trajectories``: ``True`` for ``label.lower()``, a string for another name, ``False`` where it
    is not shown. ``compare_lrs`` is its learning rate on each task of ``adamkit compare`` (the
    sweep of ``docs/compare.md``, which ``benchmarks/compare_lr_sweep.py`` runs). ``trajectory_lr`` is a learning rate it takes on every test
    function of ``adamkit trajectories``; ``None`` gives it the lr each function sets for the
    adaptive methods. ``bench`` says whether ``adamkit bench`` times it, under ``label``.
    """

    label: str
    settings: dict = field(default_factory=dict)
    compare: bool | str = True
    compare_lrs: dict = field(default_factory=dict)
    trajectories: bool | str = True
    trajectory_lr: float | None = None
    bench: bool = True

    @property
    def compare_name(self):
        """Its name in ``adamkit compare``, or ``None``."""
        return _command_name(self.compare, self.label)

    @property
    def trajectories_name(self):
        """Its name in ``adamkit trajectories``, or ``None``."""
        return _command_name(self.trajectories, self.label)


def _command_name(setting, label):
    if setting is True:
        return label.lower()
    return setting or None


class Quantities(NamedTuple):
    """A rule's diagnostic quantities for one parameter (:mod:`adamkit.diagnostics.formulas`)."""

    step_size: np.ndarray
    update: np.ndarray | None
    scale: np.ndarray | None
    eps: float | None


@dataclass(frozen=True)
class Spec:
    """An optimizer: ``rule`` updates one array given ``hyperparameters`` from the group.

    ``checkpoint_keys`` are the hyperparameters that every saved parameter group holds: those
    that ``torch.optim``'s optimizer of the same name reads at its step without a default. A
    checkpoint without one is refused (torch raises ``KeyError`` at its step); a checkpoint may
    lack the others (older torch releases did not write them), which then take the loading
    optimizer's values.

    The front ends take the hyperparameters ``positional`` by position after ``params``, in
    torch's order, the others by keyword; ``fixed`` defaults are not arguments at all (AdamW's
    decoupled weight decay). ``check_group`` checks several hyperparameters of a whole group
    together (SGD's Nesterov momentum), and raises ``ValueError``.

    ``counts_steps``: the state holds torch's ``step``. ``uses_step``: the rule's math reads it
    (a bias correction, a decayed learning rate), so the kernels take it. ``step_optional``: a
    checkpoint whose parameter state has no ``step`` loads, its count starting at 0, where the
    rule's reference packages save none (Lion counts steps only to seed the stochastic rounding
    of its bfloat16 state, :func:`adamkit.compact.policy.rounding_seed`). ``eager_state``: the
    state is made with the optimizer, as torch's Adagrad makes it. ``corrected_moments``: how
    many of ``betas``' averages the rule corrects for bias (Adam 2, Adamax 1), which the
    diagnostics report. ``diagnostics`` computes the rule's :class:`Quantities` from its
    stored state (:mod:`adamkit.diagnostics.formulas`).

    ``scalar_state`` are per-parameter 0-d tensors besides ``step`` (NAdam's ``mu_product``), in
    torch's scalar dtype, each starting at its slot's fill. ``advance(state, step, group)``
    advances them in place, after the step count, as torch's step does, and returns what the
    rule takes per tensor as ``step`` (:class:`adamkit.rules.NAdamCount`); the kernels take the
    same per tensor (``csrc/kernels_api.h``, ``mu_products``). See :meth:`count`.

    ``group_state`` are keys every parameter group keeps besides its hyperparameters, with their
    initial values (Schedule-Free's ``k``, ``weight_sum``, ``lr_max``...): the front ends add
    them to each group, and a checkpoint saves them with the group. ``advance_group(group)``
    advances them in place once per step of the optimizer, whether or not any parameter of the
    group has a gradient, and returns what the rule takes as ``step`` for every tensor of the
    group: per-group scalars that depend on the whole group's history. Such a rule keeps no
    per-parameter count (``counts_steps`` is false).

    ``eval_point`` and ``train_point`` are set for an optimizer whose parameters hold another
    point while training than where the model is evaluated (Schedule-Free's :math:`y` and
    :math:`x`), and which therefore has two modes, as ``schedulefree``'s optimizers: each
    ``(param, state, group)`` gives the parameter's value at that point from its value at the
    other, or ``None`` while its state cannot tell (before its first step). The optimizers'
    ``train()`` and ``eval()`` move the parameters of each group not yet in that mode, and record
    it in ``group["train_mode"]``; ``step`` outside train mode raises (:meth:`check_train_mode`).

    ``sparse_grads`` is how the torch front end steps a sparse gradient: ``"lazy"`` (the
    ``sparse_mode`` option, lazy by default), ``"dense"`` (always densified, as torch's SGD) or
    ``None`` (refused, as torch refuses it).

    ``native``: the C kernels step the rule (``csrc/rule_list.h`` lists it); the others are
    stepped by the reference backend on the CPU and by torch's own implementation elsewhere.

    ``norm_pass``: the step needs whole-tensor norms first (LAMB's trust ratio), so the kernels
    make two passes: the first reads the parameter, gradient and state and writes the state,
    the second reads the parameter and state again and writes the parameter
    (:mod:`adamkit.benchmarking.traffic` counts both).

    ``kernel_module``: a rule that is not element-wise (Adafactor's factors are sums over rows
    and columns) and has a kernel of its own, ``native`` false: the module of
    :mod:`adamkit.kernels` that steps it (``update_fitting`` for NumPy arrays,
    ``update_pointers`` for tensors), bitwise equal to the rule.

    The optimizer takes compact state (``state_dtype="int8"`` and ``"bf16"``) when every slot
    has a ``code``: the 8-bit kernel (``csrc/quant8.c``) steps its rule. ``full_precision_state``
    says why a rule with per-element moments keeps them in full precision all the same; the
    refusal of a compact ``state_dtype`` quotes it.

    ``variants`` are what the commands show of it. ``cases`` are hyperparameter settings that
    together reach every branch of the rule, each with the overrides of a second parameter
    group: the table every path is tested on (``tests/cases.py``).
    """

    name: str
    rule: Callable
    defaults: dict
    checks: dict
    slots: tuple[StateSlot, ...]
    checkpoint_keys: tuple[str, ...]
    positional: tuple[str, ...]
    diagnostics: Callable
    variants: tuple[Variant, ...]
    cases: tuple[tuple[dict, dict], ...]
    fixed: tuple[str, ...] = ()
    check_group: Callable[[dict], None] = lambda group: None
    counts_steps: bool = True
    uses_step: bool = False
    eager_state: bool = False
    corrected_moments: int = 0
    sparse_grads: str | None = None
    native: bool = True
    scalar_state: tuple[StateSlot, ...] = ()
    advance: Callable[[dict, float, dict], object] | None = None
    group_state: dict = field(default_factory=dict)
    advance_group: Callable[[dict], object] | None = None
    eval_point: Callable[[object, dict, dict], object] | None = None
    train_point: Callable[[object, dict, dict], object] | None = None
    norm_pass: bool = False
    step_optional: bool = False
    full_precision_state: str | None = None
    kernel_module: str | None = None

    def count(self, state, step, group):
        """The rule's per-tensor ``step`` argument after ``state["step"]`` has become ``step``:
        ``step`` itself, or what ``advance`` makes of it (advancing ``scalar_state`` in place)."""
        return step if self.advance is None else self.advance(state, step, group)

    def group_count(self, group):
        """Advance ``group`` by one step (``advance_group``) and return what every tensor of it
        takes as ``step``; ``None`` for a rule without per-group state."""
        return None if self.advance_group is None else self.advance_group(group)

    @property
    def has_modes(self):
        """Whether the optimizer has a train mode and an eval mode (``eval_point``)."""
        return self.eval_point is not None

    def check_train_mode(self, groups):
        """Raise ``RuntimeError`` if the optimizer has modes and its first group is not in train
        mode, before anything is stepped: ``schedulefree`` checks the first group, and raises."""
        if self.has_modes and not groups[0]["train_mode"]:
            raise RuntimeError(
                "Optimizer was not in train mode when step is called. Please insert .train() and "
                ".eval() calls on the optimizer. See documentation for details."
            )

    @functools.cached_property
    def rule_hyperparameters(self):
        """The keyword arguments of ``rule`` that come from a parameter group."""
        signature = inspect.signature(self.rule).parameters.values()
        return tuple(p.name for p in signature if p.kind is p.KEYWORD_ONLY and p.name != "step")

    def step_argument(self, step):
        """The rule's ``step`` keyword for the count ``step``: none where ``step`` is ``None`` or
        the rule's math does not take it (Lion counts steps only to seed its rounding)."""
        takes = "step" in inspect.signature(self.rule).parameters
        return {"step": step} if takes and step is not None else {}

    @property
    def compact(self):
        """Whether the optimizer takes compact state: every slot has an 8-bit code."""
        return bool(self.slots) and all(slot.code is not None for slot in self.slots)

    def validate(self, hyper):
        """Raise ``ValueError``/``TypeError`` naming the first bad hyperparameter in ``hyper``."""
        for name, check in self.checks.items():
            if name in hyper:
                check(name, hyper[name])

    def active_slots(self, group):
        return tuple(slot for slot in self.slots if slot.when(group))

    @property
    def elementwise(self):
        """Whether every state slot is per element, of its parameter's shape."""
        return all(slot.shape is None for slot in self.slots)

    def slot_shapes(self, group, param_shape):
        """``{key: shape}`` of the slots a parameter of ``param_shape`` in ``group`` has."""
        shapes = {slot.key: slot.shape_for(param_shape) for slot in self.active_slots(group)}
        return {key: shape for key, shape in shapes.items() if shape is not None}

    def rule_arguments(self, group):
        """The rule's keyword arguments from a parameter group, tensors turned into floats."""
        return {name: plain(group[name]) for name in self.rule_hyperparameters}


def plain(value):
    """A hyperparameter as the rule takes it: 1-element tensors (``lr``, ``betas``) as floats."""
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if type(value) in (bool, int, float, str) or value is None:
        return value
    # Tensors and NumPy scalars (np.float64 subclasses float) become Python floats, which
    # NumPy and the kernels treat as weak scalars.
    return float(value)


def check_pair(name, value):
    """A ``betas`` pair, each in [0, 1)."""
    check_betas(value)


def check_unit_closed(name, value):
    """A number in [0, 1]."""
    check_unit_interval(name, value, closed_above=True)


def check_flag(name, value):
    """A real boolean."""
    check_bool(name, value)
