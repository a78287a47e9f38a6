"""The two side-by-side comparisons: Adam with and without bias correction, and AdamW against
Adam with L2 weight decay."""

import adamkit.numpy
from adamkit.trajectories.choices import UncorrectedAdam
from adamkit.trajectories.descent import Trajectory, descend
from adamkit.trajectories.functions import SHIFTED, l2_minimum

BETAS = (0.9, 0.999)


def bias_correction(function, *, lr, steps):
    """Adam and :class:`~adamkit.trajectories.UncorrectedAdam` with the same ``lr`` and betas over the first ``steps``."""
    variants = (
        ("adam", "Adam", adamkit.numpy.Adam),
        ("uncorrected", "Adam without bias correction", UncorrectedAdam),
    )
    trajectories = []
    for name, label, factory in variants:
        path = descend(function, lambda params, factory=factory: factory(params, lr=lr, betas=BETAS),
                       steps)
        trajectories.append(Trajectory(name, label, lr, path, function.distance(path[-1])))
    return trajectories


def weight_decay(*, decay, lr, steps):
    """Adam with L2 decay (``weight_decay=decay``) and AdamW (the same ``decay``) on :data:`~adamkit.trajectories.functions.SHIFTED`.

    Returns the two trajectories and the points to mark: the minimum of f, and that of
    f + λ/2·‖θ‖², where Adam with L2 decay comes to rest.
    """
    variants = (
        ("adam-l2", f"Adam, L2 weight_decay={decay:g}", adamkit.numpy.Adam),
        ("adamw", f"AdamW, weight_decay={decay:g}", adamkit.numpy.AdamW),
    )
    trajectories = []
    for name, label, factory in variants:
        path = descend(SHIFTED, lambda params, factory=factory: factory(params, lr=lr, weight_decay=decay),
                       steps)
        trajectories.append(Trajectory(name, label, lr, path, SHIFTED.distance(path[-1])))
    regularised = l2_minimum(decay)
    markers = {
        f"minimum of f {_point(SHIFTED.reference)}": SHIFTED.reference,
        f"minimum of f + λ/2·‖θ‖² {_point(regularised)}": regularised,
    }
    return trajectories, markers


def _point(point):
    return f"({point[0]:.3g}, {point[1]:.3g})"
