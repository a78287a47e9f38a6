"""The catalogue of operations a user can do between steps, on either front end.

An operation is a dict: ``{"op": kind, "form": ..., "param": ..., "key": ..., "group": ...}``.
:data:`CATALOGUE` maps each kind to a :class:`Kind`, which says on which front ends and
configurations it applies, which forms it takes, how to draw one, whether removing it from a
sequence changes nothing (``neutral``: the twin world of :mod:`tests.fuzz.execute` skips it)
and whether adamkit should take it and keep the parameters finite (``benign``), and applies it to a world
(:mod:`tests.fuzz.worlds`). Values an operation needs are drawn from ``values``, the
generator of the sequence's seed and the operation's index, so every world gets the same.

An operation that finds nothing to act on (no such state key, no other parameter of the same
shape) does nothing, in every world alike.
"""

from dataclasses import dataclass, field

import numpy as np

from adamkit import specs
from adamkit.kernels.quantized import compact_keys
from tests.fuzz.tables import HYPER_EDITS, SLOTS, SMALL_SHAPES
from tests.fuzz.worlds import Unmirrored

BOTH = ("torch", "numpy")
TORCH = ("torch",)
NUMPY = ("numpy",)


def values_for(seed, index):
    """The generator of the values operation ``index`` of sequence ``seed`` uses."""
    return np.random.default_rng([seed, index])


@dataclass(frozen=True)
class Kind:
    """A kind of operation; ``forms`` maps each form to the front ends that have it."""

    name: str
    apply: object  # apply(world, op, values)
    forms: dict = field(default_factory=dict)
    args: tuple = ()  # which of "param", "key", "group", "hyper" an operation draws
    fronts: tuple = BOTH
    when: object = None  # config -> whether the kind applies
    neutral: frozenset = frozenset()  # forms whose removal from a sequence changes nothing
    benign: frozenset = frozenset()  # forms after which the parameters stay finite
    draws: bool = True  # drawn as a mutation (``grads`` and ``step`` are placed by the sequence)

    def applies(self, config):
        return config["front"] in self.fronts and (self.when is None or self.when(config))

    def forms_for(self, config):
        return [form for form, fronts in self.forms.items() if config["front"] in fronts]

    def draw(self, rng, config, tame=False):
        """An operation of this kind; ``tame``: of a neutral or benign form if it has one."""
        op = {"op": self.name}
        if self.forms:
            forms = self.forms_for(config)
            tame_forms = [form for form in forms if form in self.neutral | self.benign]
            op["form"] = rng.choice(tame_forms if tame and tame_forms else forms)
        if "param" in self.args:
            op["param"] = rng.randrange(8)
        if "key" in self.args:
            op["key"] = rng.choice(state_keys(config))
        if "group" in self.args:
            op["group"] = rng.randrange(2)
        if "hyper" in self.args:
            edits = HYPER_EDITS[config["optimizer"]]
            name, value, benign = rng.choice([edit for edit in edits if edit[2]] if tame else edits)
            op.update(name=name, value=value, benign=benign)
        return op

    def is_neutral(self, op):
        return op.get("form") in self.neutral

    def is_benign(self, op):
        if self.name == "hyper":
            return op["benign"]
        return op.get("form") in self.benign


def state_keys(config):
    """The state keys an operation on a slot may name under ``config``."""
    keys = list(SLOTS[config["optimizer"]])
    if config["options"].get("state_dtype") == "int8":
        keys += [name for key in keys for name in compact_keys(key)]
    if config["dtype"] == "bfloat16" and config["options"].get("kahan_summation") is not False:
        keys.append("kahan_compensation")
    return keys


def _pick(items, index):
    return items[index % len(items)] if items else None


def _param(world, op):
    return _pick(world.params(), op["param"])


def _shape(world, array):
    return tuple(array.shape)


# The kinds' operations. -------------------------------------------------------------------


def grads(world, op, values):
    """A fresh gradient of its parameter's shape and dtype for every parameter."""
    for param in world.params():
        world.set_grad(param, world.make(values.standard_normal(_shape(world, param)), world.dtype_name(param)))


def step(world, op, values):
    world.step()


def grad(world, op, values):
    """Replace one parameter's gradient."""
    param = _param(world, op)
    if param is None:
        return
    form, shape, dtype = op["form"], _shape(world, param), world.dtype_name(param)
    current = world.get_grad(param)
    if form == "storage":
        if current is not None:
            world.replace_storage(current)
        return
    if form == "readonly":
        if current is not None:
            world.set_readonly(current)
        return
    if form == "alias_other":
        others = [p for p in world.params() if p is not param and _shape(world, p) == shape
                  and world.dtype_name(p) == dtype and world.get_grad(p) is not None]
        if others:
            world.set_grad(param, world.get_grad(others[0]))
        return
    new = {
        "match": lambda: world.make(values.standard_normal(shape), dtype),
        "none": lambda: None,
        "wrong_size": lambda: world.make(values.standard_normal(int(np.prod(shape)) + 3), dtype),
        "wrong_dtype": lambda: world.make(values.standard_normal(shape), other_dtype(dtype)),
        "noncontig": lambda: world.strided(values.standard_normal(shape), dtype),
        "expand": lambda: world.expanded(values.standard_normal(), shape, dtype),
        "alias_param": lambda: world.alias_of(param),
    }[form]()
    world.set_grad(param, new)


def other_dtype(name):
    return "float32" if name in ("float64", "bfloat16") else "float64"


def param_data(world, op, values):
    """``p.data = ...``: the same parameter object over other memory (torch only)."""
    param = _param(world, op)
    if param is None:
        return
    data, dtype = param.data, world.dtype_name(param)
    numel = world.numel(param)
    new = {
        "same": lambda: data.clone(),
        "bigger": lambda: world.make(values.standard_normal(numel + 5), dtype),
        "smaller": lambda: world.make(values.standard_normal(max(numel - 3, 1)), dtype),
        "slice": lambda: data[: max(data.shape[0] // 2, 1)] if data.dim() else data,
        "noncontig": lambda: world.strided(world.numpy(data), dtype),
        "expand": lambda: world.expanded(values.standard_normal(), _shape(world, param), dtype),
        "dtype": lambda: data.to(getattr(world.torch, other_dtype(dtype))),
    }[op["form"]]()
    world.set_data(param, new)


def param_swap(world, op, values):
    """Put a new parameter object in place of one in its group (its state starts afresh), or
    make the parameter read-only in place (NumPy)."""
    param = _param(world, op)
    if param is None:
        return
    form, dtype = op["form"], world.dtype_name(param)
    if form == "readonly_inplace":
        world.set_readonly(param)
        return
    current = world.numpy(param)
    new = {
        "same": lambda: world.new_param(current, dtype),
        "bigger": lambda: world.new_param(values.standard_normal(current.size + 5), dtype),
        "dtype": lambda: world.new_param(current, other_dtype(dtype)),
        "noncontig": lambda: world.strided(current, dtype),
        "readonly": lambda: world.new_param(current, dtype),
    }[form]()
    if form == "readonly":
        world.set_readonly(new)
    for group in world.groups():
        for index, held in enumerate(group["params"]):
            if held is param:
                group["params"][index] = new
                return


def slot(world, op, values):
    """Change, replace or delete one state tensor of one parameter."""
    param = _param(world, op)
    state = world.state(param) if param is not None else None
    key, form = op["key"], op["form"]
    if not state or key not in state or not world.is_array(state[key]):
        return
    current = state[key]
    shape, dtype, numel = _shape(world, current), world.dtype_name(current), world.numel(current)
    now = world.numpy(current)
    if form == "storage":
        world.replace_storage(current)
    elif form == "resize0":
        world.resize_to_nothing(current)
    elif form == "readonly":
        world.set_readonly(current)
    elif form == "delete":
        del state[key]
    elif form == "setitem_copy":
        world.dict_setitem(state, key, world.make(now, dtype))
    elif form == "setitem_wrong_size":
        world.dict_setitem(state, key, world.make(np.zeros(numel + 5), dtype))
    elif form == "alias_slot":
        others = [k for k in sorted(state) if k != key and k != "step" and world.is_array(state[k])]
        if others:
            state[key] = state[others[0]]
    else:
        state[key] = {
            "copy": lambda: world.make(now, dtype),
            "wrong_size": lambda: world.make(np.zeros(numel + 5), dtype),
            "smaller": lambda: world.make(np.zeros(max(numel // 2, 1)), dtype),
            "empty": lambda: world.make(np.zeros(0), dtype),
            "wrong_dtype": lambda: world.make(now, other_dtype(dtype)),
            "float32": lambda: world.make(now, "float32"),
            "noncontig": lambda: world.strided(now, dtype),
            "expand": lambda: world.expanded(0.5, shape, dtype),
            "alias_param": lambda: world.alias_of(param),
        }[form]()


def step_count(world, op, values):
    """Replace or delete ``state["step"]`` of one parameter."""
    param = _param(world, op)
    state = world.state(param) if param is not None else None
    if not state or "step" not in state:
        return
    form = op["form"]
    if form == "delete":
        del state["step"]
        return
    state["step"] = {
        "value": lambda: world.make(np.array(5.0), "float32"),
        "negative": lambda: world.make(np.array(-5.0), "float32"),
        "python": lambda: 3.0,
        "integer": lambda: world.make(np.array(4), "int64"),
        "shape": lambda: world.make(np.array([1.0, 2.0]), "float32"),
    }[form]()


def hyper(world, op, values):
    """Set a hyperparameter of one group directly, valid or not; ``"toggle"`` flips a flag.
    torch.optim's optimizer raises :class:`Unmirrored` for one it does not have."""
    if not world.knows(op["name"]):
        raise Unmirrored(op["name"])
    group = _pick(world.groups(), op["group"])
    value = op["value"]
    if value == "toggle":
        value = not group.get(op["name"], False)
    group[op["name"]] = tuple(value) if isinstance(value, list) else value


def append_param(world, op, values):
    """Append a parameter to a group: a new one, or one already there (a duplicate)."""
    group = _pick(world.groups(), op["group"])
    form = op["form"]
    if form == "new":
        shape = SMALL_SHAPES[int(values.integers(len(SMALL_SHAPES)))]
        group["params"].append(world.new_param(values.standard_normal(shape), world.config["dtype"]))
    elif form == "duplicate" and group["params"]:
        group["params"].append(group["params"][0])
    elif form == "other_group":
        others = [p for g in world.groups() if g is not group for p in g["params"]]
        if others:
            group["params"].append(others[0])


def remove_param(world, op, values):
    group = _pick(world.groups(), op["group"])
    if group["params"]:
        group["params"].pop(op["param"] % len(group["params"]))


def add_group(world, op, values):
    """``add_param_group`` with a new parameter (of compact-state size under a compact
    ``state_dtype``) or with one that is already optimized."""
    if op["form"] == "existing":
        params = world.params()[:1]
    else:
        compact = world.config["options"].get("state_dtype") in ("int8", "bf16")
        shape = (4100,) if compact else SMALL_SHAPES[int(values.integers(len(SMALL_SHAPES)))]
        params = [world.new_param(values.standard_normal(shape), world.config["dtype"])]
    world.add_group(params, 0.05)


def state_dict(world, op, values):
    """Round trips, copies and tampered state dicts loaded back."""
    form = op["form"]
    if form == "roundtrip":
        world.load_state_dict(world.state_dict())
    elif form == "deepcopy":
        world.copy()
    elif form == "other_rule":
        world.load_state_dict(world.other_rule_state_dict(values))
    else:
        world.load_state_dict(world.tamper(world.state_dict(), form, values))


def modes(world, op, values):
    """``eval()`` then ``train()``, or ``eval()`` alone (its step raises until ``train()``)."""
    world.opt.eval()
    if op["form"] == "eval_train":
        world.opt.train()


def recasts_on_load(config):
    """Whether loading a state dict changes the dtype torch.optim holds its state in: it casts
    scalar state other than ``step`` (NAdam's ``mu_product``, float32 until then) to its
    parameter's dtype, and then rounds differently. The torch front end does as torch does; the
    NumPy front end keeps float32, so that a checkpoint resumes bit for bit."""
    return bool(specs.BY_NAME[config["optimizer"]].scalar_state) and config["dtype"] != "float32"


def _counts_steps(config):
    return specs.BY_NAME[config["optimizer"]].counts_steps


def _has_modes(config):
    return specs.BY_NAME[config["optimizer"]].has_modes


CATALOGUE = {
    kind.name: kind
    for kind in (
        Kind("grads", grads, draws=False),
        Kind("step", step, draws=False),
        Kind(
            "grad", grad, args=("param",),
            forms={"match": BOTH, "none": BOTH, "wrong_size": BOTH, "wrong_dtype": BOTH, "noncontig": BOTH,
                   "expand": BOTH, "alias_param": BOTH, "alias_other": BOTH, "storage": TORCH, "readonly": NUMPY},
            neutral=frozenset({"storage"}),
            benign=frozenset({"match", "none", "noncontig", "alias_other", "storage", "readonly"}),
        ),
        Kind(
            "param_data", param_data, args=("param",), fronts=TORCH,
            forms={form: TORCH for form in ("same", "bigger", "smaller", "slice", "noncontig", "expand", "dtype")},
            neutral=frozenset({"same"}), benign=frozenset({"same", "noncontig"}),
        ),
        Kind(
            "param_swap", param_swap, args=("param",),
            forms={"same": BOTH, "bigger": BOTH, "dtype": BOTH, "noncontig": BOTH, "readonly": NUMPY,
                   "readonly_inplace": NUMPY},
            benign=frozenset({"same", "bigger", "dtype"}),
        ),
        Kind(
            "slot", slot, args=("param", "key"),
            forms={"copy": BOTH, "storage": TORCH, "setitem_copy": NUMPY, "wrong_size": BOTH, "smaller": BOTH,
                   "empty": BOTH, "wrong_dtype": BOTH, "float32": BOTH, "noncontig": BOTH, "expand": BOTH,
                   "alias_slot": BOTH, "alias_param": BOTH, "resize0": TORCH, "delete": BOTH,
                   "setitem_wrong_size": NUMPY, "readonly": NUMPY},
            neutral=frozenset({"copy", "storage", "setitem_copy"}),
            benign=frozenset({"copy", "storage", "setitem_copy", "noncontig", "delete", "readonly"}),
        ),
        Kind(
            "step_count", step_count, args=("param",), when=_counts_steps,
            forms={form: BOTH for form in ("value", "negative", "python", "integer", "shape", "delete")},
            benign=frozenset({"value", "python", "integer"}),
        ),
        Kind("hyper", hyper, args=("group", "hyper")),
        Kind(
            "append_param", append_param, args=("group",),
            forms={"new": BOTH, "duplicate": BOTH, "other_group": BOTH}, benign=frozenset({"new"}),
        ),
        Kind("remove_param", remove_param, args=("group", "param"), benign=frozenset({None})),
        Kind("modes", modes, forms={"eval_train": BOTH, "eval": BOTH}, when=_has_modes,
             benign=frozenset({"eval_train"})),
        Kind("add_group", add_group, forms={"new": BOTH, "existing": BOTH}, benign=frozenset({"new"})),
        Kind(
            "state_dict", state_dict,
            forms={"roundtrip": BOTH, "deepcopy": BOTH, "other_rule": BOTH, "step_negative": BOTH,
                   "missing_key": BOTH, "wrong_shape": BOTH, "wrong_dtype": BOTH, "missing_absmax": BOTH,
                   "extra_param": BOTH},
            neutral=frozenset({"roundtrip", "deepcopy"}),
            benign=frozenset({"roundtrip", "deepcopy", "missing_key", "wrong_shape", "missing_absmax", "extra_param"}),
        ),
    )
}
