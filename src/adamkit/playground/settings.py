"""The settings of one playground request, read from JSON and checked field by field.

Every value is checked for its type, for NaN and infinity and for its range, and the work one
request may ask for is bounded: at most :data:`MAX_STEPS` steps and :data:`MAX_OPTIMIZER_STEPS`
steps summed over the optimizers. A bad value raises :class:`BadSetting`, which names the field
(``"optimizers[2].lr"``), and the web app answers it with a 4xx.
"""

import math
from dataclasses import dataclass

from adamkit import specs
from adamkit.trajectories import FUNCTIONS
from adamkit.trajectories import OPTIMIZERS as DRAWN

OPTIMIZERS = {name: choice for name, choice in DRAWN.items() if not specs.DRAWN[name][0].has_modes}
"""The optimizers of the page: those of ``adamkit trajectories`` but Schedule-Free. The page plots,
at each step, the state and the step size computed from one parameter's stored state and step
count (:mod:`adamkit.playground.paths`); Schedule-Free's step size depends on its group's schedule
(``k``, ``weight_sum``, ``lr_max``), and its parameter holds y, not the x its path shows."""

#: The most steps one optimizer takes in one request.
MAX_STEPS = 2000
MAX_OPTIMIZERS = len(OPTIMIZERS)
#: The most steps of one request, summed over its optimizers.
MAX_OPTIMIZER_STEPS = MAX_OPTIMIZERS * 1000
QUADRATIC = "quadratic"
DECAYS = ("l2", "decoupled")
#: Ranges of the numeric fields: (lowest, highest, whether the lowest is allowed).
RANGES = {
    "lr": (0.0, 10.0, False),
    "beta1": (0.0, 0.9999, True),
    # The largest β₂ whose power β₂^(2⁴⁰) still underflows to 0 (bias correction off, see paths).
    "beta2": (0.0, 0.99999, True),
    "eps": (0.0, 1.0, False),
    "weight_decay": (0.0, 10.0, True),
    "noise": (0.0, 10.0, True),
    "condition": (1.0, 1000.0, True),
    "angle": (-90.0, 90.0, True),
}
MAX_SEED = 2**32 - 1


class BadSetting(ValueError):
    """A request field with a bad value: ``field`` names it, the message says what is wrong,
    ``status`` is the HTTP status to answer with (422; 400 for a body that is not JSON)."""

    def __init__(self, field, message, status=422):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Run:
    """One optimizer of a request: its name in :data:`adamkit.trajectories.choices.OPTIMIZERS` and lr."""

    name: str
    lr: float


@dataclass(frozen=True)
class Settings:
    """Everything that determines the paths: the function, the optimizers and the knobs.

    ``betas``, ``eps``, ``amsgrad`` and ``bias_correction`` act on the Adam family (the
    optimizers with ``betas``); ``weight_decay`` on every optimizer, decoupled (AdamW) where
    the optimizer has that form and ``decay`` is ``"decoupled"``. ``noise`` is the standard
    deviation of the Gaussian noise added to each gradient component, drawn from ``seed``.
    """

    function: str
    condition: float
    angle: float
    runs: tuple
    steps: int
    betas: tuple
    eps: float
    weight_decay: float
    decay: str
    amsgrad: bool
    bias_correction: bool
    noise: float
    seed: int


FIELDS = ("function", "condition", "angle", "optimizers", "steps", "beta1", "beta2", "eps",
          "weight_decay", "decay", "amsgrad", "bias_correction", "noise", "seed")


def read_settings(body, also=()):
    """The :class:`Settings` of the JSON object ``body``; absent fields take their defaults.

    ``also`` names the other fields the caller reads from ``body`` itself; any other unknown
    field is refused, so that a misspelt setting is not silently ignored.
    """
    if not isinstance(body, dict):
        raise BadSetting("body", "must be a JSON object")
    extra = sorted(set(body) - set(FIELDS) - set(also))
    if extra:
        raise BadSetting(extra[0], "is not a setting")
    function = choice(body, "function", "rosenbrock", (*FUNCTIONS, QUADRATIC))
    runs = read_runs(body.get("optimizers"), function)
    steps = integer(body, "steps", default_steps(function), 1, MAX_STEPS)
    if steps * len(runs) > MAX_OPTIMIZER_STEPS:
        raise BadSetting("steps", f"{steps} steps × {len(runs)} optimizers is over the limit of "
                                  f"{MAX_OPTIMIZER_STEPS} steps per request")
    return Settings(
        function=function,
        condition=number(body, "condition", 100.0),
        angle=number(body, "angle", 30.0),
        runs=runs,
        steps=steps,
        betas=(number(body, "beta1", 0.9), number(body, "beta2", 0.999)),
        eps=number(body, "eps", 1e-8),
        weight_decay=number(body, "weight_decay", 0.0),
        decay=choice(body, "decay", "l2", DECAYS),
        amsgrad=flag(body, "amsgrad", False),
        bias_correction=flag(body, "bias_correction", True),
        noise=number(body, "noise", default_noise(function)),
        seed=integer(body, "seed", 0, 0, MAX_SEED),
    )


def read_runs(value, function):
    """The optimizers of the request: a list of ``{"name": ..., "lr": ...}``, lr defaulting to
    the function's learning rate for that optimizer."""
    if value is None:
        value = [{"name": name} for name in default_optimizers(function)]
    if not isinstance(value, list) or not value:
        raise BadSetting("optimizers", "must be a non-empty list of {name, lr}")
    if len(value) > MAX_OPTIMIZERS:
        raise BadSetting("optimizers", f"at most {MAX_OPTIMIZERS} optimizers, got {len(value)}")
    runs = []
    for index, entry in enumerate(value):
        field = f"optimizers[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "lr"}:
            raise BadSetting(field, "must be an object with 'name' and optionally 'lr'")
        name = choice(entry, "name", None, tuple(OPTIMIZERS), field=f"{field}.name")
        if name in (run.name for run in runs):
            raise BadSetting(f"{field}.name", f"{name!r} is listed twice")
        lr = number(entry, "lr", default_lr(function, name), field=f"{field}.lr", limits="lr")
        runs.append(Run(name, lr))
    return tuple(runs)


def default_optimizers(function):
    """The optimizers drawn on ``function`` unless the request names others."""
    if function == QUADRATIC:
        return ("sgd", "nesterov", "rmsprop", "adam")
    return tuple(name for name in FUNCTIONS[function].optimizers or DRAWN if name in OPTIMIZERS)


def default_lr(function, name):
    """The learning rate of optimizer ``name`` on ``function`` (the quadratic's: the ill-conditioned one's)."""
    return FUNCTIONS["ill-conditioned" if function == QUADRATIC else function].lrs[name]


def default_steps(function):
    """How many steps are drawn on ``function`` unless the request says: at most 500."""
    return min(500, FUNCTIONS["ill-conditioned" if function == QUADRATIC else function].steps * 2)


def default_noise(function):
    """The gradient noise of ``function`` (the noisy quadratic's 1.0, else none)."""
    return 0.0 if function == QUADRATIC else FUNCTIONS[function].noise


def number(body, key, default, *, field=None, limits=None):
    """The finite number ``body[key]`` inside :data:`RANGES` of ``limits`` (default: ``key``)."""
    field = field or key
    value = body.get(key, default)
    if value is None:
        raise BadSetting(field, "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadSetting(field, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise BadSetting(field, f"must be finite, got {value}")
    low, high, low_allowed = RANGES[limits or key]
    if not (low <= value <= high) or (value == low and not low_allowed):
        interval = f"{'[' if low_allowed else '('}{low:g}, {high:g}]"
        raise BadSetting(field, f"must be in {interval}, got {value:g}")
    return value


def integer(body, key, default, low, high):
    """The integer ``body[key]`` in ``[low, high]``."""
    value = body.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadSetting(key, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise BadSetting(key, f"must be in [{low}, {high}], got {value}")
    return value


def flag(body, key, default):
    """The boolean ``body[key]``: true or false, nothing else."""
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadSetting(key, f"must be true or false, got {value!r}")
    return value


def choice(body, key, default, choices, *, field=None):
    """``body[key]``, one of ``choices``."""
    field = field or key
    value = body.get(key, default)
    if not isinstance(value, str) or value not in choices:
        raise BadSetting(field, f"must be one of {', '.join(choices)}; got {value!r}")
    return value
