"""The formulas over the states of several steps stacked (a row per step, the counts a column),
as the playground calls them once per path, give each row the very bits of a call per step."""

import numpy as np
import pytest

from adamkit import rules
from adamkit.diagnostics.formulas import FORMULAS

ARGUMENTS = {
    rules.adam: [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": amsgrad, "eps_hat": eps_hat}
                 for amsgrad in (False, True) for eps_hat in (False, True)],
    rules.adamax: [{"lr": 0.02, "betas": (0.8, 0.99)}],
    rules.adagrad: [{"lr": 0.1, "lr_decay": 0.01, "eps": 1e-10}],
    rules.rmsprop: [{"lr": 0.01, "eps": 1e-8, "momentum": momentum, "centered": centered}
                    for momentum in (0.0, 0.9) for centered in (False, True)],
    rules.adadelta: [{"lr": 1.0, "eps": 1e-6}],
    rules.radam: [{"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}],
    rules.nadam: [{"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-8}],
    rules.sgd: [{"lr": 0.1, "momentum": momentum, "nesterov": nesterov}
                for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True))],
}
KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "sum", "square_avg", "acc_delta", "momentum_buffer", "grad_avg")


@pytest.mark.parametrize(("rule", "arguments"), [(rule, a) for rule, cases in ARGUMENTS.items() for a in cases])
def test_stacked_rows_are_the_bits_of_one_call_per_step(rule, arguments):
    rng = np.random.default_rng(0)
    steps = 40
    states = {key: rng.random((steps, 3)) * 10.0 ** rng.integers(-8, 2, (steps, 3)) for key in KEYS}
    params = rng.standard_normal((steps, 3))
    counts = np.arange(1.0, steps + 1)
    formula = FORMULAS[rule]
    with np.errstate(invalid="ignore"):  # centered RMSprop's variance may be negative here
        stacked = formula(states, step=counts[:, np.newaxis], param=params, **arguments)
    for row, count in enumerate(counts.tolist()):
        with np.errstate(invalid="ignore"):
            alone = formula({key: rows[row] for key, rows in states.items()}, step=count, param=params[row], **arguments)
        for field, value in alone._asdict().items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(stacked, field)[row], value, err_msg=field)
            else:
                assert getattr(stacked, field) == value, field
