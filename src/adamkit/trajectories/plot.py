"""Contour plots with optimizer paths, drawn with matplotlib's Agg canvas (no display).

Every function writes a PNG and returns the matplotlib ``Figure``, whose legends hold the
labels of :func:`legend_label`.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adamkit.trajectories.choices import OPTIMIZERS
from adamkit.trajectories.descent import step_lengths

DPI = 100
FUNCTION_INCHES = (10.0, 6.0)  # 1000 × 600 pixels
PAIR_INCHES = (13.0, 5.5)  # 1300 × 550 pixels
GRID_POINTS = 300
# The colour of each optimizer, the same in every figure, and of the variants drawn beside Adam.
COLORS = {
    **{name: f"C{index}" for index, name in enumerate(OPTIMIZERS)},
    "uncorrected": "C9",
    "adam-l2": "C5",
    "adamw": "C0",
}


def distance_text(distance):
    """How a final distance is shown: ``d=0.0123``, or ``diverged``."""
    return f"d={distance:.3g}" if np.isfinite(distance) else "diverged"


def legend_label(trajectory):
    """The legend entry of a :class:`~adamkit.trajectories.Trajectory`: name, lr and final distance."""
    return f"{trajectory.label} (lr={trajectory.lr:g}): {distance_text(trajectory.final_distance)}"


def plot_function(function, trajectories, path, steps):
    """Write the contours of ``function`` with each trajectory on them to the PNG ``path``."""
    figure, axes = _figure(FUNCTION_INCHES, 1, 1)
    draw_contours(axes, function)
    for trajectory in trajectories:
        draw_path(axes, trajectory)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", borderaxespad=0,
                title=f"final distance d to the {function.reference_name}")
    axes.set_title(f"{function.title}: f = {function.formula}, {steps} steps")
    return _save(figure, path)


def draw_contours(axes, function):
    """The function's contours over its plot window, its start (○) and reference point (★)."""
    (x_min, x_max), (y_min, y_max) = function.bounds
    x, y = np.meshgrid(np.linspace(x_min, x_max, GRID_POINTS), np.linspace(y_min, y_max, GRID_POINTS))
    values = function.value(x, y)
    if function.log_levels:
        low = max(values.min(), values.max() * 1e-6)
        levels = np.geomspace(low, values.max(), function.contour_levels)
    else:
        levels = np.linspace(values.min(), values.max(), function.contour_levels)
    axes.contourf(x, y, values, levels=levels, cmap="Greys_r", alpha=0.3, extend="both")
    axes.contour(x, y, values, levels=levels, colors="0.5", linewidths=0.5)
    axes.plot(*function.start, "o", color="black", markerfacecolor="white", markersize=8, zorder=5,
              label=f"start ({function.start[0]:g}, {function.start[1]:g})")
    axes.plot(*function.reference, "*", color="black", markersize=13, zorder=5,
              label=f"{function.reference_name} ({function.reference[0]:g}, {function.reference[1]:g})")
    axes.set_xlim(x_min, x_max)
    axes.set_ylim(y_min, y_max)
    axes.set_xlabel("x")
    axes.set_ylabel("y")


def draw_path(axes, trajectory, linestyle="-"):
    """The path as a line, its final point as a dot, labelled by :func:`legend_label`."""
    color = COLORS[trajectory.name]
    axes.plot(trajectory.path[:, 0], trajectory.path[:, 1], color=color, linestyle=linestyle,
              linewidth=1.4, label=legend_label(trajectory))
    final = trajectory.path[-1]
    if np.all(np.isfinite(final)):
        axes.plot(*final, "o", color=color, markersize=5, zorder=4)


def plot_bias_correction(function, corrected, uncorrected, betas, path):
    """Adam's and uncorrected Adam's first steps on ``function`` (left), and the ratio of their
    step lengths beside :math:`(1-\\beta_1^t)/\\sqrt{1-\\beta_2^t}` (right)."""
    figure, (paths_axes, ratio_axes) = _figure(PAIR_INCHES, 1, 2)
    draw_contours(paths_axes, function)
    draw_path(paths_axes, corrected)
    draw_path(paths_axes, uncorrected, linestyle="--")
    paths_axes.legend(loc="best", fontsize="small", title=f"d: distance to the {function.reference_name}")
    steps = np.arange(1, len(corrected.path))
    with np.errstate(all="ignore"):
        measured = step_lengths(uncorrected.path) / step_lengths(corrected.path)
    beta1, beta2 = betas
    ratio_axes.plot(steps, measured, color=COLORS["uncorrected"], marker="o", markersize=3,
                    label="measured: uncorrected step length / Adam's")
    ratio_axes.plot(steps, (1 - beta1**steps) / np.sqrt(1 - beta2**steps), color="0.3", linestyle=":",
                    label="(1 − β₁ᵗ) / √(1 − β₂ᵗ): the factor for a constant gradient")
    ratio_axes.axhline(1.0, color="0.6", linewidth=0.8)
    ratio_axes.set_xlabel("step t")
    ratio_axes.set_ylabel("ratio of step lengths")
    ratio_axes.grid(True, alpha=0.3)
    ratio_axes.legend(loc="best", fontsize="small")
    figure.suptitle(f"Adam with and without bias correction: the first {len(steps)} steps on "
                    f"{function.title}, f = {function.formula}, lr={corrected.lr:g}")
    return _save(figure, path)


def plot_weight_decay(function, trajectories, markers, weight_decay, path):
    """AdamW and Adam with L2 on ``function`` (left) and each coordinate against the step (right).

    ``markers`` maps a label to a point marked with a cross on the contours and drawn as dotted
    lines on the right. With ``weight_decay`` > 0, dashed lines show the box ``|θᵢ| = 1/λ``.
    """
    figure, (paths_axes, coordinate_axes) = _figure(PAIR_INCHES, 1, 2)
    draw_contours(paths_axes, function)
    if weight_decay > 0:
        bound = 1 / weight_decay
        for value in (bound, -bound):
            paths_axes.axvline(value, color="0.25", linestyle="--", linewidth=0.9)
            paths_axes.axhline(value, color="0.25", linestyle="--", linewidth=0.9)
        coordinate_axes.axhline(bound, color="0.25", linestyle="--", linewidth=0.9, label=f"1/λ = {bound:.3g}")
    for trajectory in trajectories:
        draw_path(paths_axes, trajectory)
    for (label, point), color in zip(markers.items(), ("crimson", "navy")):
        paths_axes.plot(*point, "X", color=color, markersize=10, zorder=6, label=label)
        for value in point:
            coordinate_axes.axhline(value, color=color, linestyle=":", linewidth=1)
    paths_axes.legend(loc="lower right", fontsize="small",
                      title=f"d: distance to the {function.reference_name} of f")
    for trajectory in trajectories:
        steps = np.arange(1, len(trajectory.path))  # from step 1, on a log scale
        color = COLORS[trajectory.name]
        coordinate_axes.plot(steps, trajectory.path[1:, 0], color=color, label=f"{trajectory.label}: x")
        coordinate_axes.plot(steps, trajectory.path[1:, 1], color=color, linestyle="--",
                             label=f"{trajectory.label}: y")
    coordinate_axes.set_xscale("log")
    coordinate_axes.set_xlabel("step")
    coordinate_axes.set_ylabel("coordinate (dotted: the crosses' coordinates)")
    coordinate_axes.grid(True, alpha=0.3)
    coordinate_axes.legend(loc="best", fontsize="small")
    figure.suptitle(f"AdamW against Adam with L2, both with weight_decay={weight_decay:g}, on "
                    f"f = {function.formula}")
    return _save(figure, path)


def _figure(inches, rows, columns):
    figure = Figure(figsize=inches, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns)


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    return figure
