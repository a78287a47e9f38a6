"""An optimizer and its parameters, for the operations of :mod:`tests.fuzz.ops` to act on.

A *world* is one front end's optimizer built from a sequence's configuration, with the
primitives an operation needs (make an array, set a gradient, step, save and load state) in
that front end's terms. :class:`TorchWorld` holds an ``adamkit.torch`` optimizer or the
``torch.optim`` optimizer that mirrors it; :class:`NumpyWorld` an ``adamkit.numpy`` one, whose
gradients are kept by parameter (as torch keeps ``p.grad``) and passed to ``step`` in order.
torch is imported only by the worlds that need it, so NumPy sequences run without it.
"""

import copy
import inspect

import numpy as np

from adamkit import specs


def other_rule(name):
    """The rule whose state dict an optimizer of rule ``name`` is made to load, with the
    hyperparameters of its case that makes the most state: the next rule of the specs' order."""
    names = [spec.name for spec in specs.ALL]
    other = specs.BY_NAME[names[(names.index(name) + 1) % len(names)]]
    hyper = max((case for case, _ in other.cases),
                key=lambda case: len(other.active_slots({**other.defaults, **case})))
    return other.name, hyper


class Unmirrored(Exception):
    """torch.optim's optimizer has no such hyperparameter: the mirror cannot follow."""


def initial_values(config, seed):
    """The starting values of the parameters, group by group: float64 NumPy arrays."""
    rng = np.random.default_rng([seed, 1 << 30])
    return [[rng.standard_normal(shape) for shape in group["shapes"]] for group in config["groups"]]


class World:
    """What both front ends share: the optimizer made from the configuration (by the
    subclass's ``_optimizer``), its groups and the arrays made read-only."""

    def __init__(self, config, seed):
        self.config = config
        self.readonly = []  # (array, its bytes when made read-only)
        groups = []
        for group, values in zip(config["groups"], initial_values(config, seed)):
            params = [self.new_param(value, config["dtype"]) for value in values]
            groups.append({"params": params, **group.get("hyper", {})})
        self.opt = self._optimizer(config["optimizer"], groups, config["hyper"], config["options"])
        self.spec = specs.BY_NAME[config["optimizer"]]
        if self.spec.has_modes:
            self.opt.train()

    def knows(self, key):
        """Whether the optimizer has the hyperparameter ``key``."""
        return True

    def groups(self):
        return self.opt.param_groups

    def params(self):
        return [param for group in self.opt.param_groups for param in group["params"]]

    def snapshot(self):
        """``(dtype name, float64 NumPy copy)`` of each parameter, in order."""
        return [(self.dtype_name(param), self.numpy(param)) for param in self.params()]

    def readonly_written(self):
        """Whether an array made read-only has changed since."""
        return any(self.numpy(array).tobytes() != saved for array, saved in self.readonly)

    def tamper(self, state_dict, form, values):
        """``state_dict`` (a copy, to be loaded) made wrong in the way ``form`` says."""
        states = self._states_of(state_dict)
        slots = [(state, key) for state in states for key in list(state)
                 if key != "step" and not key.endswith("_absmax") and self.is_array(state[key])]
        if form == "step_negative":
            for state in states:
                if "step" in state:
                    state["step"] = self.make(np.array(-5.0), "float32")
        elif form == "missing_key" and slots:
            state, key = slots[0]
            del state[key]
        elif form == "wrong_shape" and slots:
            state, key = slots[-1]
            state[key] = self.make(values.standard_normal(self.numel(state[key]) + 1), self.dtype_name(state[key]))
        elif form == "wrong_dtype" and slots:
            state, key = slots[0]
            state[key] = self.make(self.numpy(state[key]), "float16")
        elif form == "missing_absmax":
            for state in states:
                for key in [key for key in state if key.endswith("_absmax")][:1]:
                    del state[key]
        elif form == "extra_param":
            self._add_state(state_dict, {"step": self.make(np.array(1.0), "float32"),
                                         "exp_avg": self.make(np.zeros(3), "float32")})
        return state_dict


class TorchWorld(World):
    """An ``adamkit.torch`` optimizer (``adamkit=True``) or the ``torch.optim`` one that mirrors it."""

    front = "torch"

    def __init__(self, config, seed, adamkit):
        import torch

        from adamkit import torch as adamkit_torch

        self.torch = torch
        self.adamkit = adamkit
        self.module = adamkit_torch if adamkit else torch.optim
        super().__init__(config, seed)

    def _optimizer(self, name, groups, hyper, options):
        kwargs = dict(hyper)
        if self.adamkit:
            kwargs.update(options)
        elif "foreach" in inspect.signature(getattr(self.module, name)).parameters:
            kwargs["foreach"] = False
        return getattr(self.module, name)(groups, **kwargs)

    def knows(self, key):
        return self.adamkit or key in inspect.signature(type(self.opt)).parameters

    # Arrays.
    def make(self, values, dtype):
        return self.torch.from_numpy(np.array(values, dtype=np.float64)).to(getattr(self.torch, dtype))

    def strided(self, values, dtype):
        base = self.make(np.stack([values, values], axis=-1), dtype)
        return base[..., 0]

    def expanded(self, value, shape, dtype):
        return self.make(np.array(value), dtype).expand(*shape)

    def is_array(self, value):
        return isinstance(value, self.torch.Tensor)

    def dtype_name(self, tensor):
        return str(tensor.dtype).removeprefix("torch.")

    def numel(self, tensor):
        return tensor.numel()

    def numpy(self, tensor):
        tensor = tensor.detach()
        return (tensor.double() if tensor.is_floating_point() else tensor).numpy().copy()

    def alias_of(self, param):
        return param.detach()

    # Parameters and gradients.
    def new_param(self, values, dtype):
        return self.torch.nn.Parameter(self.make(values, dtype))

    def get_grad(self, param):
        return param.grad

    def set_grad(self, param, grad):
        """``param.grad = grad``; through ``param.grad.data`` where the setter would refuse it."""
        if grad is None or (grad.shape == param.shape and grad.dtype == param.dtype):
            param.grad = grad
            return
        param.grad = self.torch.zeros_like(param)
        param.grad.data = grad

    def set_data(self, param, data):
        param.data = data

    def set_readonly(self, array):
        """NumPy's read-only flag: nothing in torch."""

    def replace_storage(self, tensor):
        tensor.data = tensor.data.clone()

    def resize_to_nothing(self, tensor):
        tensor.resize_(0)

    # The optimizer.
    def state(self, param):
        return self.opt.state.get(param)

    def dict_setitem(self, state, key, value):
        state[key] = value

    def step(self):
        self.opt.step()

    def add_group(self, params, lr):
        self.opt.add_param_group({"params": params, "lr": lr})

    def state_dict(self):
        return copy.deepcopy(self.opt.state_dict())

    def load_state_dict(self, state_dict):
        self.opt.load_state_dict(state_dict)

    def copy(self):
        """Go on with a deep copy of the optimizer (and so of its parameters), whose parameters
        get copies of the gradients (``Parameter.__deepcopy__`` leaves them out)."""
        grads = [param.grad for param in self.params()]
        self.opt = copy.deepcopy(self.opt)
        for param, grad in zip(self.params(), grads):
            param.grad = None if grad is None else grad.clone()

    def saved(self):
        """Copies of the parameters' values and of their state, for :meth:`restore`."""
        return [(param, param.detach().clone(), dict(self.opt.state.get(param, {})),
                 {key: value.clone() for key, value in self.opt.state.get(param, {}).items() if self.is_array(value)})
                for param in self.params()]

    def restore(self, saved):
        """Put back the values :meth:`saved` copied, in the same tensors."""
        for param, values, state, copies in saved:
            _put_back(param, values)
            for key, value in copies.items():
                _put_back(state[key], value)
            if param in self.opt.state:
                self.opt.state[param].clear()
                self.opt.state[param].update(state)

    def fill_missing(self, key):
        """Give every parameter whose state lacks ``key`` (a slot, or ``step``) the value
        torch.optim starts it from, as if it had just been created; ``True`` if any lacked it."""
        filled = False
        for group in self.opt.param_groups:
            for param in group["params"]:
                state = self.opt.state.get(param)
                applies = key == "step" or key in self.spec.slot_shapes(group, tuple(param.shape))
                if state and key not in state and applies:
                    state[key] = self.torch.tensor(0.0) if key == "step" else self._initial_slot(key, param, group)
                    filled = True
        return filled

    def _initial_slot(self, key, param, group):
        """The slot ``key`` of ``param`` as torch.optim creates it (of the slot's shape, see
        :meth:`adamkit.rules._spec.Spec.slot_shapes`)."""
        slot = next(slot for slot in self.spec.slots if slot.key == key)
        shape = self.spec.slot_shapes(group, tuple(param.shape))[key]
        return self.torch.full(shape, float(slot.initial_value(self.opt.defaults) or 0.0), dtype=param.dtype)

    def other_rule_state_dict(self, values):
        """The state dict of another rule's adamkit optimizer (torch.optim may lack the rule),
        stepped once on parameters like these."""
        name, hyper = other_rule(self.config["optimizer"])
        groups = [{"params": [self.new_param(self.numpy(p), self.dtype_name(p)) for p in group["params"]]}
                  for group in self.opt.param_groups]
        from adamkit import torch as adamkit_torch

        other = getattr(adamkit_torch, name)(groups, **hyper)
        specs.in_train_mode(other)
        for group in groups:
            for param in group["params"]:
                param.grad = self.make(values.standard_normal(tuple(param.shape)), self.dtype_name(param))
        other.step()
        return copy.deepcopy(other.state_dict())

    def _states_of(self, state_dict):
        return list(state_dict["state"].values())

    def _add_state(self, state_dict, state):
        state_dict["state"][99] = state


class NumpyWorld(World):
    """An ``adamkit.numpy`` optimizer, with a gradient (or ``None``) kept for each parameter."""

    front = "numpy"

    def __init__(self, config, seed):
        import adamkit.numpy

        self.module = adamkit.numpy
        self.grads = {}  # id(param) -> (param, grad)
        super().__init__(config, seed)

    def _optimizer(self, name, groups, hyper, options):
        return getattr(self.module, name)(groups, **hyper, **options)

    # Arrays.
    def make(self, values, dtype):
        return np.array(values, dtype=dtype)

    def strided(self, values, dtype):
        return self.make(np.stack([values, values], axis=-1), dtype)[..., 0]

    def expanded(self, value, shape, dtype):
        scalar = self.make(np.array([value]), dtype)
        return np.lib.stride_tricks.as_strided(scalar, shape=tuple(shape), strides=(0,) * len(shape))

    def is_array(self, value):
        return isinstance(value, np.ndarray)

    def dtype_name(self, array):
        return array.dtype.name

    def numel(self, array):
        return array.size

    def numpy(self, array):
        return np.array(array, dtype=np.float64 if array.dtype.kind == "f" else array.dtype, copy=True)

    def alias_of(self, param):
        return param

    # Parameters and gradients.
    def new_param(self, values, dtype):
        return self.make(values, dtype)

    def get_grad(self, param):
        held = self.grads.get(id(param))
        return held[1] if held is not None and held[0] is param else None

    def set_grad(self, param, grad):
        self.grads[id(param)] = (param, grad)

    def set_readonly(self, array):
        array.flags.writeable = False
        self.readonly.append((array, self.numpy(array).tobytes()))

    # The optimizer.
    def state(self, param):
        index = next((i for i, p in enumerate(self.params()) if p is param), None)
        return self.opt.state[index] if index is not None else None

    def dict_setitem(self, state, key, value):
        dict.__setitem__(state, key, value)

    def step(self):
        self.opt.step([self.get_grad(param) for param in self.params()])

    def add_group(self, params, lr):
        self.opt.add_param_group({"params": params, "lr": lr})

    def state_dict(self):
        return self.opt.state_dict()

    def load_state_dict(self, state_dict):
        self.opt.load_state_dict(state_dict)

    def copy(self):
        """Go on with a deep copy of the optimizer (and so of its parameters), whose parameters
        get copies of the gradients."""
        grads = [self.get_grad(param) for param in self.params()]
        self.opt = copy.deepcopy(self.opt)
        self.grads = {}
        for param, grad in zip(self.params(), grads):
            self.set_grad(param, None if grad is None else grad.copy())

    def other_rule_state_dict(self, values):
        """The state dict of another rule's optimizer stepped once on arrays like these."""
        name, hyper = other_rule(self.config["optimizer"])
        groups = [{"params": [param.copy() for param in group["params"]]} for group in self.opt.param_groups]
        other = specs.in_train_mode(self._optimizer(name, groups, hyper, {}))
        params = [param for group in groups for param in group["params"]]
        other.step([values.standard_normal(param.shape).astype(param.dtype) for param in params])
        return other.state_dict()

    def _states_of(self, state_dict):
        """The flat state dict's entries regrouped per parameter: dicts that write through."""
        return [_FlatState(state_dict, prefix) for prefix in
                sorted({key.rsplit(".", 1)[0] for key in state_dict if key.startswith("state.")})]

    def _add_state(self, state_dict, state):
        for key, value in state.items():
            state_dict[f"state.99.{key}"] = value


class _FlatState(dict):
    """One parameter's entries ``<prefix>.<key>`` of a flat NumPy state dict, as a dict whose
    changes go to the flat dict."""

    def __init__(self, flat, prefix):
        super().__init__({key[len(prefix) + 1:]: value for key, value in flat.items() if key.startswith(prefix + ".")})
        self._flat, self._prefix = flat, prefix

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._flat[f"{self._prefix}.{key}"] = value

    def __delitem__(self, key):
        super().__delitem__(key)
        del self._flat[f"{self._prefix}.{key}"]


def make_world(config, seed, adamkit=True):
    """The world of ``config``'s front end, or (``adamkit=False``) the torch.optim mirror."""
    if config["front"] == "numpy" and adamkit:
        return NumpyWorld(config, seed)
    return TorchWorld(config, seed, adamkit)


def _put_back(tensor, values):
    """Copy ``values`` into ``tensor``, or, where its elements share memory (``expand``), which
    no copy can write, give it ``values`` as its data."""
    try:
        tensor.data.copy_(values)
    except RuntimeError:
        tensor.data = values.clone()
