r"""Adafactor: second moments factored into row and column averages, relative step sizes and
update clipping.

Shazeer & Stern, *Adafactor: Adaptive Learning Rates with Sublinear Memory Cost*, ICML 2018,
Algorithms 4 and 5, as ``torch.optim.Adafactor`` (2.13) defines them: ``lr`` caps the relative
step size and scales the decoupled weight decay, ε1 guards the variance estimate rather than
the squared gradient, and the factors are means, not sums.
"""

import math
from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, maximum, sqrt
from adamkit.rules.lamb import NORM_BLOCK, NORM_LANES, squared_norm
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag
from adamkit.validation import as_float, check_nonnegative


FACTOR_BLOCK = 1 << 16
"""The elements of a block of rows of the column sums (:func:`adamkit.rules.adafactor.factor_sums`)."""


class AdafactorState(NamedTuple):
    param: np.ndarray
    row_var: np.ndarray | None
    col_var: np.ndarray | None
    variance: np.ndarray | None


def adafactor(
    param: np.ndarray,
    grad: np.ndarray,
    row_var: np.ndarray | None,
    col_var: np.ndarray | None,
    variance: np.ndarray | None,
    *,
    step: float,
    lr: float = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> AdafactorState:
    r"""One Adafactor step on one array; returns the new :class:`AdafactorState`.

    .. math::
        G &\leftarrow \pm\nabla f(\theta) \\
        \hat\beta_{2,t} &= 1 - t^{\tau}, \quad \rho_t = \min(\gamma, 1/\sqrt t), \quad
            \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta))\,\rho_t \\
        \theta &\leftarrow \theta - \gamma\lambda\theta \\
        R &\leftarrow \hat\beta_{2,t} R + (1-\hat\beta_{2,t})\,\mathrm{mean}_{-1}(G^2), \quad
        C \leftarrow \hat\beta_{2,t} C + (1-\hat\beta_{2,t})\,\mathrm{mean}_{-2}(G^2) \\
        \hat V &= R\,C / \max(\mathrm{mean}(R), \epsilon_1) \quad
            \text{(a vector keeps } \hat V \leftarrow \hat\beta_{2,t}\hat V + (1-\hat\beta_{2,t})G^2) \\
        U &= G \cdot 1/\sqrt{\max(\hat V, \epsilon_1^2)}, \quad
        \theta \leftarrow \theta - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U)/d)}\,U

    A parameter of two or more dimensions keeps ``row_var`` (its last axis reduced) and
    ``col_var`` (its second-to-last reduced), one per matrix of its leading axes; one of fewer
    keeps the full ``variance``. ``eps[0] = None`` is the machine epsilon of the parameter's
    dtype. The reductions are in float64 and in a fixed order (``factor_sums``,
    ``row_var_sum``, :func:`adamkit.rules.lamb.squared_norm`), which the C kernel follows;
    the rest is torch's order of operations (``U`` is ``rsqrt`` times ``G``). With ``lr`` a
    float the scalars are Python floats, as torch's ``.item()`` makes them.
    """
    return whole_tensor_step(
        adafactor_phases(
            param, grad, row_var, col_var, variance, step=step, lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
            weight_decay=weight_decay, maximize=maximize,
        )
    )  # fmt: skip


def adafactor_phases(
    param, grad, row_var, col_var, variance, *, step, lr, beta2_decay, eps, d, weight_decay, maximize, shape=None
):
    r""":func:`adafactor` as a generator that yields its sums over axes of the tensor and
    resumes with the whole tensor's, for a tensor split across processes (FSDP2,
    ``adamkit.torch._adafactor_shards``). ``shape`` is the whole tensor's (default
    ``param.shape``), the arrays its part.

    It yields twice a list of pairs ``(sum, axis)``, each a float64 sum of squares or of a
    factor over ``axis`` (``None``: every axis) kept as length-1 axes, in :func:`adafactor`'s
    fixed order, and is sent back the same list of sums, made whole by adding every part's: a
    sum over an axis the tensor is split along, or over every axis, needs the others' parts;
    the other sums (over rows, when the tensor is split by rows) are already whole.
    :func:`whole_tensor_step` sends back what it yields, which is the rule on one whole array.
    Which sums there are:

    - the parameter's squared norm (every axis), for its root mean square;
    - with two or more dimensions, the sum of :math:`G^2` over the rows (axis ``-2``), for the
      column factor, and the sum over the rows of the new row factor, for
      :math:`\mathrm{mean}(R)`; the sum of :math:`G^2` over the columns (axis ``-1``) is whole
      unless the tensor is split by columns;
    - then the update's squared norm (every axis), for its root mean square.
    """
    shape = tuple(param.shape if shape is None else shape)
    size = math.prod(shape)
    dtype = param.dtype.type
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = float(np.finfo(param.dtype).eps)
    grad = directed_gradient(grad, maximize)
    # Increasing decay, 1 - β̂2_t = t^τ, and the relative step size ρ_t.
    one_minus_beta2 = step**beta2_decay
    rho = min(lr, 1 / (step**0.5))
    sums = [(squared_norm(param), None)]
    if grad.ndim > 1:
        # Factored second moment: the means of G² over rows and over columns.
        row_sums, col_sums = factor_sums(grad)
        row_var = _lerp(row_var, _mean_from_sum(row_sums, shape[-1], dtype), one_minus_beta2)
        sums += [(col_sums, -2), (row_var_sum(row_var), -2)]
    param_squares, *factor_totals = yield sums
    # Parameter scaling: the step is relative to the parameter's root mean square.
    alpha = max(eps2, _root(param_squares, dtype) / (size**0.5)) * rho
    if weight_decay != 0:
        param = param * (1 - lr * weight_decay)
    if grad.ndim > 1:
        col_sums, row_var_total = factor_totals
        col_var = _lerp(col_var, _mean_from_sum(col_sums, shape[-2], dtype), one_minus_beta2)
        row_var_mean = (row_var_total / shape[-2]).astype(row_var.dtype)
        var_estimate = (row_var * col_var) / maximum(row_var_mean, eps1)
    else:
        variance = _lerp(variance, grad * grad, one_minus_beta2)
        var_estimate = variance
    update = (1 / sqrt(maximum(var_estimate, eps1 * eps1))) * grad
    # Update clipping: the update's root mean square is at most d.
    (update_squares,) = yield [(squared_norm(update), None)]
    denom = max(1.0, _root(update_squares, dtype) / ((size**0.5) * d))
    param = param + (-alpha / denom) * update
    return AdafactorState(param, row_var, col_var, variance)


def whole_tensor_step(phases):
    """Run :func:`adafactor_phases` on one whole array: each sum it yields is already whole."""
    try:
        sums = next(phases)
        while True:
            sums = phases.send([total for total, _ in sums])
    except StopIteration as done:
        return done.value


def factor_sums(grad):
    r"""The sums of :math:`G^2` over the last axis and over the second-to-last, in float64
    and in a fixed order, shaped like ``row_var`` and ``col_var``.

    Each square is taken in float64. A row's sum is :func:`adamkit.rules.lamb.squared_norm`
    of the row (16 lanes by column modulo 16 per block of 4096, a fixed tree, the blocks in
    order). A column's sum runs over blocks of ``max(1, FACTOR_BLOCK // columns)``
    consecutive rows of its matrix: each block adds its rows one by one in row order, and the
    blocks' sums are added one by one in block order. The C kernel sums in this order, one
    task per block of rows, so its bits are these on any instruction set and thread count.
    """
    *_, rows, cols = grad.shape
    squares = np.square(grad.reshape(math.prod(grad.shape[:-2]), rows, cols).astype(np.float64))
    row_sums = np.zeros(squares.shape[:2])
    for start in range(0, cols, NORM_BLOCK):
        row_sums = row_sums + _lane_sums(squares[..., start : start + NORM_BLOCK])
    per_block = max(1, FACTOR_BLOCK // cols)
    col_sums = np.zeros((squares.shape[0], cols))
    for start in range(0, rows, per_block):
        # np.cumsum adds strictly in order: its last row is the block's sequential sum.
        col_sums = col_sums + np.cumsum(squares[:, start : start + per_block], axis=1)[:, -1]
    return row_sums.reshape(grad.shape[:-1] + (1,)), col_sums.reshape(grad.shape[:-2] + (1, cols))


def _lane_sums(squares):
    """Per row of ``squares`` (at most ``NORM_BLOCK`` columns): the sum of
    :func:`adamkit.rules.lamb.squared_norm`'s lanes, added in its tree."""
    cols = squares.shape[-1]
    lanes = np.zeros(squares.shape[:-1] + (NORM_LANES,))
    for lane in range(min(NORM_LANES, cols)):
        # np.cumsum adds strictly in order: its last entry is the lane's sequential sum.
        lanes[..., lane] = np.cumsum(squares[..., lane::NORM_LANES], axis=-1)[..., -1]
    while lanes.shape[-1] > 1:
        half = lanes.shape[-1] // 2
        lanes = lanes[..., :half] + lanes[..., half:]
    return lanes[..., 0]


def _mean_from_sum(sums, count, dtype):
    """torch's ``norm(G, dim).square_().div_(count)``: the root of the float64 sum rounded to
    the parameter's dtype, squared and divided by ``count`` there."""
    norms = np.sqrt(sums).astype(dtype)
    return (norms * norms) / dtype(count)


def row_var_sum(row_var):
    """The sum of ``row_var`` over its rows (axis -2, kept), per matrix: its values added one
    by one in row order in float64. Divided by the rows and rounded to the dtype, it is the
    row factor's mean."""
    values = row_var.astype(np.float64)
    # A leading row of zeros changes no sum and gives a part without rows its sum, 0.
    values = np.concatenate([np.zeros(values.shape[:-2] + (1,) + values.shape[-1:]), values], axis=-2)
    return np.cumsum(values, axis=-2)[..., -1:, :]


def _lerp(start, end, weight):
    """``start + weight (end - start)``, torch's ``lerp_`` for ``weight < 0.5``, else its
    other form, ``end - (end - start)(1 - weight)``."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _root(squares, dtype):
    """torch's ``x.norm(2).item()`` from :func:`adamkit.rules.lamb.squared_norm`'s float64
    ``squares``: their root rounded to ``dtype``, as a Python float."""
    return float(dtype(math.sqrt(squares)))


def adafactor_diagnostics(state, step, lr, eps, **_):
    r"""Adafactor: the relative step :math:`\rho_t/\max(\sqrt{\hat V}, \epsilon_1)` on the
    gradient, before parameter scaling and clipping (which need the parameter and gradient:
    the update is ``None``); ε1 = ``None`` is float32's machine epsilon here."""
    eps1 = eps[0] if eps[0] is not None else float(np.finfo(np.float32).eps)
    if "variance" in state:
        estimate = state["variance"]
    else:
        row_var, col_var = state["row_var"], state["col_var"]
        estimate = row_var * col_var / np.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
    scale = np.sqrt(estimate)
    rho = np.minimum(lr, 1 / np.sqrt(step))
    return Quantities(rho / np.maximum(scale, eps1), None, scale, eps1)


def _row_shape(shape):
    return shape[:-1] + (1,) if len(shape) > 1 else None


def _col_shape(shape):
    return shape[:-2] + (1,) + shape[-1:] if len(shape) > 1 else None


def _variance_shape(shape):
    return shape if len(shape) <= 1 else None


def _check_d(name, value):
    """The clipping threshold: >= 1 (infinity turns clipping off)."""
    if not as_float(name, value) >= 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (Clipping threshold d should be >= 1)")


def _check_beta2_decay(name, value):
    """The exponent of β̂2_t = 1 - t^beta2_decay: <= 0."""
    if not as_float(name, value) <= 0.0:
        raise ValueError(f"Invalid {name}: {value!r} (beta2_decay should be <= 0)")


def _check_eps(name, value):
    """``(eps1, eps2)``: eps1 ``None`` (the dtype's machine epsilon) or a finite number >= 0,
    eps2 a finite number >= 0."""
    try:
        pair = tuple(value) if not isinstance(value, (str, bytes)) else None
    except TypeError:
        pair = None
    if pair is None:
        raise TypeError(f"eps must be a pair (eps1 or None, eps2), got {value!r}")
    if len(pair) != 2:
        raise ValueError(f"Invalid eps: {value!r} (must be a pair (eps1 or None, eps2))")
    for index, entry in enumerate(pair):
        if index == 0 and entry is None:
            continue
        number = as_float(f"eps[{index}]", entry)
        if not (number >= 0.0 and math.isfinite(number)):
            raise ValueError(f"Invalid eps[{index}]: {entry!r} (epsilon{index + 1} should be >= 0 and finite)")


ADAFACTOR = Spec(
    name="Adafactor",
    rule=adafactor,
    defaults=dict(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False),
    checks={
        "lr": check_nonnegative,
        "beta2_decay": _check_beta2_decay,
        "eps": _check_eps,
        "d": _check_d,
        "weight_decay": check_nonnegative,
        "maximize": check_flag,
    },
    slots=(
        StateSlot("row_var", shape=_row_shape),
        StateSlot("col_var", shape=_col_shape),
        StateSlot("variance", shape=_variance_shape),
    ),
    checkpoint_keys=("lr", "beta2_decay", "eps", "d", "weight_decay", "maximize"),
    positional=("lr", "beta2_decay", "eps", "d", "weight_decay"),
    uses_step=True,
    diagnostics=adafactor_diagnostics,
    native=False,
    kernel_module="adafactor",
    variants=(Variant("Adafactor", compare_lrs={"logreg": 1.0, "mlp": 0.03, "cnn": 0.1}),),
    cases=(
        ({"weight_decay": 0.1, "d": 1.5, "beta2_decay": -0.6}, {"lr": 0.05}),
        ({"eps": (1e-20, 1e-2), "maximize": True, "lr": 0.5}, {"beta2_decay": -1.0}),
    ),
)
