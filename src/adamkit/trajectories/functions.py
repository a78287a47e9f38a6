r"""Two-dimensional test functions, each with its gradient, start, reference point and plot window.

``value`` takes arrays ``x`` and ``y`` of any (equal) shape, so a whole plotting grid is
evaluated at once; ``gradient`` takes one point ``[x, y]`` and returns ``[∂f/∂x, ∂f/∂y]``.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from adamkit import specs


@dataclass(frozen=True)
class TestFunction:
    """A function to draw optimizer paths on.

    ``reference`` is the point distances are measured to: the global minimum, or for the
    saddle, the saddle point (``reference_name`` says which). ``noise`` is the standard
    deviation of the Gaussian noise added to each gradient component (0: exact gradients).
    ``lrs`` maps an optimizer name of :data:`adamkit.trajectories.choices.OPTIMIZERS` to
    its learning rate on this function; ``lr_note`` says how they were chosen. ``bounds`` is
    the plot window, ``((x_min, x_max), (y_min, y_max))``.
    """

    __test__ = False  # not a pytest test class, despite its name

    name: str
    title: str
    formula: str
    value: Callable
    gradient: Callable
    start: tuple
    reference: tuple
    steps: int
    bounds: tuple
    lrs: dict
    lr_note: str
    reference_name: str = "minimum"
    noise: float = 0.0
    log_levels: bool = True
    contour_levels: int = 25
    optimizers: tuple | None = None  # the names drawn by default; None: all of them

    def distance(self, point):
        """The Euclidean distance from ``point`` to the reference point."""
        return float(math.hypot(point[0] - self.reference[0], point[1] - self.reference[1]))


def rosenbrock_value(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_gradient(point):
    x, y = point
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


# Beale's three terms are (c_k - x + x y^k) for k = 1, 2, 3.
BEALE_CONSTANTS = (1.5, 2.25, 2.625)


def beale_value(x, y):
    return sum((c - x + x * y**k) ** 2 for k, c in enumerate(BEALE_CONSTANTS, start=1))


def beale_gradient(point):
    x, y = point
    terms = [(c - x + x * y**k, k) for k, c in enumerate(BEALE_CONSTANTS, start=1)]
    return np.array([
        sum(2 * t * (y**k - 1) for t, k in terms),
        sum(2 * t * k * x * y ** (k - 1) for t, k in terms),
    ])


RASTRIGIN_A = 10.0


def rastrigin_value(x, y):
    return 2 * RASTRIGIN_A + sum(c**2 - RASTRIGIN_A * np.cos(2 * np.pi * c) for c in (x, y))


def rastrigin_gradient(point):
    return np.array([2 * c + 2 * np.pi * RASTRIGIN_A * np.sin(2 * np.pi * c) for c in point])


def saddle_value(x, y):
    return x**2 - y**2


def saddle_gradient(point):
    x, y = point
    return np.array([2 * x, -2 * y])


# The ill-conditioned quadratic f = (a x² + b y²)/2 has condition number b/a = 100.
ILL_CONDITIONED = (0.1, 10.0)


def ill_conditioned_value(x, y):
    a, b = ILL_CONDITIONED
    return (a * x**2 + b * y**2) / 2


def ill_conditioned_gradient(point):
    a, b = ILL_CONDITIONED
    return np.array([a * point[0], b * point[1]])


def bowl_value(x, y):
    return (x**2 + y**2) / 2


def bowl_gradient(point):
    return np.array([point[0], point[1]], dtype=np.float64)


# How the learning rates below were chosen (docs/trajectories.md has the details):
ADAPTIVE_NOTE = ("SGD and SGD-Nesterov: the best of the grid 1e-4, 3e-4, ..., 1 by mean distance "
                 "along the path; the adaptive methods share one lr, as their steps are about lr "
                 "long whatever the gradient's scale; Adadelta has lr=1, Zeiler's rule unscaled")
SAME_NOTE = "one lr for all (Adadelta: lr=1), so that only the gradient's size differs"


def lr_table(sgd, nesterov, adaptive):
    """A function's learning rates: SGD's and SGD-Nesterov's; the adaptive methods share
    ``adaptive``, but for those whose variant fixes one (:attr:`adamkit.rules._spec.Variant.trajectory_lr`)."""
    shared = {name: adaptive if variant.trajectory_lr is None else variant.trajectory_lr
              for name, (_, variant) in specs.DRAWN.items()}
    return {**shared, "sgd": sgd, "nesterov": nesterov}


#: The six test functions by name.
FUNCTIONS = {
    "rosenbrock": TestFunction(
        name="rosenbrock", title="Rosenbrock", formula="(1 − x)² + 100 (y − x²)²",
        value=rosenbrock_value, gradient=rosenbrock_gradient,
        start=(-1.2, 1.0), reference=(1.0, 1.0), steps=1500, bounds=((-2.0, 2.0), (-1.0, 3.0)),
        lrs=lr_table(sgd=3e-3, nesterov=1e-3, adaptive=0.02), lr_note=ADAPTIVE_NOTE,
    ),
    "beale": TestFunction(
        name="beale", title="Beale", formula="Σₖ (cₖ − x + x yᵏ)², c = 1.5, 2.25, 2.625",
        value=beale_value, gradient=beale_gradient,
        start=(1.0, 1.5), reference=(3.0, 0.5), steps=1500, bounds=((-1.0, 4.5), (-1.5, 2.5)),
        lrs=lr_table(sgd=0.03, nesterov=3e-3, adaptive=0.01), lr_note=ADAPTIVE_NOTE,
    ),
    "rastrigin": TestFunction(
        name="rastrigin", title="Rastrigin", formula="20 + Σ (c² − 10 cos 2πc) over c = x, y",
        value=rastrigin_value, gradient=rastrigin_gradient,
        start=(2.5, -2.2), reference=(0.0, 0.0), steps=300, bounds=((-3.0, 3.0), (-3.0, 3.0)),
        lrs=lr_table(sgd=3e-3, nesterov=3e-3, adaptive=0.05), lr_note=ADAPTIVE_NOTE,
        log_levels=False, contour_levels=8,
    ),
    "saddle": TestFunction(
        name="saddle", title="Saddle", formula="x² − y²",
        value=saddle_value, gradient=saddle_gradient,
        start=(1.0, 1e-3), reference=(0.0, 0.0), reference_name="saddle point",
        steps=150, bounds=((-1.5, 1.5), (-1.5, 1.5)),
        lrs=lr_table(sgd=0.01, nesterov=0.01, adaptive=0.01), lr_note=SAME_NOTE, log_levels=False,
    ),
    "ill-conditioned": TestFunction(
        name="ill-conditioned", title="Ill-conditioned quadratic",
        formula=f"({ILL_CONDITIONED[0]:g} x² + {ILL_CONDITIONED[1]:g} y²) / 2",
        value=ill_conditioned_value, gradient=ill_conditioned_gradient,
        start=(-5.0, 1.5), reference=(0.0, 0.0), steps=100, bounds=((-6.0, 2.0), (-2.0, 2.0)),
        lrs=lr_table(sgd=0.1, nesterov=0.1, adaptive=0.1), lr_note=ADAPTIVE_NOTE,
    ),
    "noisy": TestFunction(
        name="noisy", title="Quadratic with noisy gradients",
        formula="(x² + y²) / 2, gradient + N(0, 1) noise",
        value=bowl_value, gradient=bowl_gradient, noise=1.0,
        start=(-3.0, 2.0), reference=(0.0, 0.0), steps=300, bounds=((-4.0, 2.0), (-2.0, 3.0)),
        lrs=lr_table(sgd=0.1, nesterov=0.01, adaptive=0.05),
        lr_note=("pairs without and with momentum at the same step: SGD lr=0.1 and SGD-Nesterov "
                 "lr=0.01 (momentum 0.9 multiplies it by 10); RMSprop and Adam lr=0.05"),
        optimizers=("sgd", "nesterov", "rmsprop", "adam"),
    ),
}

# The function of the --weight-decay figure: an ill-conditioned quadratic whose minimum is
# away from the origin, so that a decay towards 0 has something to pull against.
SHIFTED_CENTRE = (4.0, 1.0)


def shifted_value(x, y):
    a, b = ILL_CONDITIONED
    return (a * (x - SHIFTED_CENTRE[0]) ** 2 + b * (y - SHIFTED_CENTRE[1]) ** 2) / 2


def shifted_gradient(point):
    a, b = ILL_CONDITIONED
    return np.array([a * (point[0] - SHIFTED_CENTRE[0]), b * (point[1] - SHIFTED_CENTRE[1])])


#: The function of the ``--weight-decay`` figure (above).
SHIFTED = TestFunction(
    name="shifted", title="Shifted ill-conditioned quadratic",
    formula=(f"({ILL_CONDITIONED[0]:g} (x − {SHIFTED_CENTRE[0]:g})² + "
             f"{ILL_CONDITIONED[1]:g} (y − {SHIFTED_CENTRE[1]:g})²) / 2"),
    value=shifted_value, gradient=shifted_gradient,
    start=(-1.0, -1.5), reference=SHIFTED_CENTRE, steps=1500, bounds=((-2.0, 5.5), (-2.0, 2.0)),
    lrs={"adam": 0.05}, lr_note="AdamW and Adam with L2 share lr and weight_decay",
)


def l2_minimum(weight_decay):
    """The minimum of SHIFTED + λ/2·‖θ‖², where Adam with L2 decay comes to rest: c·a/(a + λ)."""
    return tuple(centre * scale / (scale + weight_decay)
                 for centre, scale in zip(SHIFTED_CENTRE, ILL_CONDITIONED))
