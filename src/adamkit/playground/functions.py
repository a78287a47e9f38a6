"""The functions the playground draws on: the six of ``adamkit trajectories`` and a quadratic
whose condition number and rotation are chosen, with the contour grid the page draws."""

import dataclasses
import math

import numpy as np

from adamkit.trajectories import FUNCTIONS, TestFunction
from adamkit.trajectories.functions import ADAPTIVE_NOTE, ILL_CONDITIONED

GRID_POINTS = 120
#: The quadratic's larger curvature: that of the ill-conditioned quadratic of ``trajectories``.
LARGEST_CURVATURE = ILL_CONDITIONED[1]


def quadratic(condition, angle):
    r"""The quadratic :math:`\tfrac12(a u^2 + b w^2)`, :math:`(u, w)` = (x, y) rotated by ``angle``
    degrees, with :math:`b` = :data:`LARGEST_CURVATURE` and :math:`a = b/\kappa`, κ = ``condition``.

    With κ = 100 and angle 0 it is the ill-conditioned quadratic of ``adamkit trajectories``.
    """
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    small, large = LARGEST_CURVATURE / condition, LARGEST_CURVATURE

    def value(x, y):
        u, w = cos * x + sin * y, -sin * x + cos * y
        return (small * u**2 + large * w**2) / 2

    def gradient(point):
        x, y = point
        u, w = cos * x + sin * y, -sin * x + cos * y
        return np.array([small * u * cos - large * w * sin, small * u * sin + large * w * cos])

    return dataclasses.replace(
        FUNCTIONS["ill-conditioned"], name="quadratic", title="Quadratic",
        formula=f"(a u² + b w²) / 2, b/a = {condition:g}, (u, w) = (x, y) rotated by {angle:g}°",
        value=value, gradient=gradient, bounds=((-6.0, 2.0), (-3.0, 3.0)), lr_note=ADAPTIVE_NOTE,
    )


def test_function(settings):
    """The :class:`~adamkit.trajectories.TestFunction` of ``settings``, with its gradient noise."""
    function = (quadratic(settings.condition, settings.angle) if settings.function == "quadratic"
                else FUNCTIONS[settings.function])
    return dataclasses.replace(function, noise=settings.noise)


def contours(function: TestFunction):
    """The grid the page draws contours of: ``x``, ``y`` and ``z[j][i]`` = the value at
    ``(x[i], y[j])``, as log10 of the value where the function's levels are logarithmic."""
    (x_min, x_max), (y_min, y_max) = function.bounds
    x = np.linspace(x_min, x_max, GRID_POINTS)
    y = np.linspace(y_min, y_max, GRID_POINTS)
    values = function.value(*np.meshgrid(x, y))
    if function.log_levels:
        values = np.log10(np.maximum(values, max(values.min(), values.max() * 1e-6)))
    return {"x": x.tolist(), "y": y.tolist(), "z": values.tolist(), "log": function.log_levels,
            "start": list(function.start), "reference": list(function.reference),
            "title": function.title, "formula": function.formula}
