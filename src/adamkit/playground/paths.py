r"""The optimizers' paths and what they hold at each step, computed by ``adamkit.numpy``.

Each optimizer of a request is an ``adamkit.numpy`` optimizer over the one point ``[x, y]``,
stepped with the function's gradient (plus the request's Gaussian noise, the same draws for
every optimizer, as in ``adamkit trajectories``). After each step its state is read as it is
stored, and its per-coordinate step size comes from :mod:`adamkit.diagnostics.formulas`.

Bias correction off is adamkit's own Adam with its step count started at :data:`UNCORRECTED_STEP`
= 2⁴⁰: there :math:`1-\beta^t` is exactly 1 in double precision for every allowed β, so both
bias-correction factors are 1 and nothing else changes.
"""

import numpy as np

from adamkit.diagnostics.formulas import FORMULAS, group_bias_corrections
from adamkit.playground.functions import test_function
from adamkit.rules._common import with_l2_penalty
from adamkit.specs import SCALAR_STATE_KEYS
from adamkit.playground.settings import OPTIMIZERS

#: The step count at which Adam starts when bias correction is off (see above).
UNCORRECTED_STEP = np.float32(2.0**40)


def hyperparameters(run, settings):
    """The keyword arguments of ``run``'s optimizer: its lr and own settings, and the knobs of
    ``settings`` it has (the Adam family's betas, eps and AMSGrad; decoupled weight decay)."""
    choice = OPTIMIZERS[run.name]
    accepted = choice.factory.hyperparameters
    values = {**choice.settings, "lr": run.lr, "weight_decay": settings.weight_decay}
    # Adafactor's eps is a pair (eps1, eps2) of another meaning: it keeps its own.
    knobs = ("betas",) if isinstance(choice.factory.spec.defaults.get("eps"), tuple) else ("betas", "eps")
    values.update({name: getattr(settings, name) for name in knobs if name in accepted})
    if "betas" in accepted:  # the page's (beta1, beta2), then the rule's own further betas (AdEMAMix's beta3)
        values["betas"] = (*settings.betas, *choice.factory.spec.defaults["betas"][2:])
    if "amsgrad" in accepted:
        values["amsgrad"] = settings.amsgrad or choice.settings.get("amsgrad", False)
    if "decoupled_weight_decay" in accepted:
        values["decoupled_weight_decay"] = settings.decay == "decoupled"
    return values


def has_bias_correction(run):
    """Whether ``run``'s optimizer corrects its moments' bias: the Adam family (not Lion, whose
    betas are not corrected)."""
    return OPTIMIZERS[run.name].factory.spec.corrected_moments > 0


def corrects_bias(run, settings):
    """Whether ``run``'s optimizer corrects its moments' bias under ``settings``."""
    return has_bias_correction(run) and settings.bias_correction


def stepping(function, run, settings):
    """Step ``run``'s optimizer ``settings.steps`` times from ``function.start``.

    Yields ``(gradient, point, optimizer)`` after each step; ``point`` is the optimizer's
    parameter array, updated in place.
    """
    point = np.array(function.start, dtype=np.float64)
    optimizer = OPTIMIZERS[run.name].factory([point], **hyperparameters(run, settings))
    if has_bias_correction(run) and not settings.bias_correction:
        optimizer.state[0]["step"] = np.array(UNCORRECTED_STEP)
    noise = np.random.default_rng(settings.seed)
    with np.errstate(all="ignore"):  # a diverging path is drawn, not an error
        for _ in range(settings.steps):
            gradient = function.gradient(point)
            if function.noise:
                gradient = gradient + function.noise * noise.standard_normal(2)
            optimizer.step([gradient])
            yield gradient, point, optimizer


def rule_arguments(optimizer):
    """The rule's keyword arguments from the optimizer's one parameter group."""
    return optimizer.spec.rule_arguments(optimizer.param_groups[0])


def state_values(optimizer):
    """The arrays of the optimizer's one state dict, as float64 copies, by torch's key."""
    state = optimizer.state[0]
    return {key: np.array(value, dtype=np.float64) for key, value in state.items() if key != "step"}


def step_count(optimizer):
    """The optimizer's stored step count ``t`` (``None`` for SGD, which keeps none)."""
    step = optimizer.state[0].get("step")
    return None if step is None else float(step)


def step_size(optimizer, state, point, arguments, step=None):
    """The per-coordinate step size of :mod:`adamkit.diagnostics.formulas` for ``state``, at the
    optimizer's step count, or for the states of several steps stacked (a row per step) at the
    counts ``step`` (a column), each row as its own call gives it."""
    if step is None:
        step = step_count(optimizer)
    with np.errstate(all="ignore"):
        formula = FORMULAS[optimizer.spec.rule]
        return formula(state, step=step, param=point, **arguments).step_size


def recorded_run(function, run, settings):
    """Step ``run``'s optimizer, recording after each step its point, its state arrays (as
    float64) and its step count: ``(points, states, counts, optimizer)``, ``points`` a row per
    step, ``states`` the rows of each state key, ``counts`` a column (``None`` for SGD)."""
    points, rows, counts, keys = [], [], [], None
    for _, point, optimizer in stepping(function, run, settings):
        state = optimizer.state[0]
        if keys is None:
            keys = [key for key in state if key != "step" and key not in SCALAR_STATE_KEYS]
        points.append(point.tolist())
        rows.append([state[key].tolist() for key in keys])
        counts.append(float(state["step"]) if "step" in state else None)
    stacked = np.array(rows, dtype=np.float64).reshape(len(rows), len(keys), len(points[0]))
    states = {key: stacked[:, index] for index, key in enumerate(keys)}
    counts = None if counts[0] is None else np.array(counts)[:, np.newaxis]
    return np.array(points), states, counts, optimizer


def paths(settings):
    """Each optimizer's path and, per step, its state arrays and step size (the page's plots)."""
    function = test_function(settings)
    results = []
    for run in settings.runs:
        points, states, counts, optimizer = recorded_run(function, run, settings)
        series = {**states, "step_size": step_size(optimizer, states, points, rule_arguments(optimizer), counts)}
        path = [list(function.start), *points.tolist()]
        results.append({
            "name": run.name,
            "label": OPTIMIZERS[run.name].label,
            "hyperparameters": hyperparameters(run, settings),
            "bias_correction": corrects_bias(run, settings),
            "path": path,
            "series": {key: rows.tolist() for key, rows in series.items()},
            "final_distance": function.distance(path[-1]),
        })
    return results


def inside_step(settings, index, t):
    """Everything in step ``t`` of optimizer ``index``: the point and the state before and after,
    the gradient (with its L2 term), the bias-correction factors, the bias-corrected moments of
    the Adam family, the step size and the update θ_{t−1} − θ_t."""
    run = settings.runs[index]
    function = test_function(settings)
    before, before_state = np.array(function.start, dtype=np.float64), {}
    # The loop leaves step t's gradient, point and optimizer for what follows it.
    for count, (gradient, point, optimizer) in enumerate(stepping(function, run, settings), 1):  # noqa: B007
        if count == t:
            break
        if count == t - 1:
            before, before_state = point.copy(), state_values(optimizer)
    arguments = rule_arguments(optimizer)
    after_state = state_values(optimizer)
    rule = optimizer.spec.rule
    step = step_count(optimizer)
    bias_correction1, bias_correction2 = group_bias_corrections(rule, step, arguments.get("betas"))
    decoupled = arguments.get("decoupled_weight_decay", False)
    values = {
        "theta_before": before,
        "gradient": gradient,
        "gradient_used": gradient if decoupled else with_l2_penalty(gradient, before, arguments["weight_decay"]),
        "theta": point.copy(),
        "update": before - point,
        "step_size": step_size(optimizer, after_state, point, arguments),
        **{f"{key}_before": before_state.get(key, np.zeros(2)) for key in after_state},
        **after_state,
    }
    if bias_correction1 is not None:
        values["exp_avg_hat"] = after_state["exp_avg"] / bias_correction1
    if bias_correction2 is not None:
        second = after_state["max_exp_avg_sq" if arguments.get("amsgrad") else "exp_avg_sq"]
        values["exp_avg_sq_hat"] = second / bias_correction2
    if decoupled:
        values["decay"] = arguments["lr"] * arguments["weight_decay"] * before
    return {
        "name": run.name,
        "label": OPTIMIZERS[run.name].label,
        "rule": rule.__name__,
        "t": t,
        "step_count": step,
        "amsgrad": bool(arguments.get("amsgrad", False)),
        "decoupled": bool(decoupled),
        "bias_correction": corrects_bias(run, settings),
        "scalars": {
            **{key: value for key, value in arguments.items() if isinstance(value, float)},
            **{f"beta{index + 1}": beta for index, beta in enumerate(arguments.get("betas", ()))},
            "bias_correction1": bias_correction1,
            "bias_correction2": bias_correction2,
        },
        "values": {key: np.asarray(value, dtype=np.float64).tolist() for key, value in values.items()},
    }
