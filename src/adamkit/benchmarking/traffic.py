"""Bytes a rule must move per parameter per step: the numerator of the bandwidth bound.

A step reads the parameter, its gradient and each state buffer once, and writes back the
parameter and each state buffer once; the gradient is only read. With ``S`` state buffers::

    elements moved = (1 param + 1 grad + S states) read + (1 param + S states) written = 3 + 2S

Every array that is written was read in the same pass, so its cache lines are already present
and there is no write-allocate traffic to add. For fp32 (4 bytes per element)::

    Adam          S=2 exp_avg, exp_avg_sq                  7 elements  28 B
    AdamW         S=2 exp_avg, exp_avg_sq                  7 elements  28 B
    AMSGrad       S=3 exp_avg, exp_avg_sq, max_exp_avg_sq  9 elements  36 B
    Adamax        S=2 exp_avg, exp_inf                     7 elements  28 B
    Adadelta      S=2 square_avg, acc_delta                7 elements  28 B
    RMSprop       S=1 square_avg                           5 elements  20 B
                  (+ momentum_buffer with momentum, + grad_avg when centered: 8 B each)
    Adagrad       S=1 sum                                  5 elements  20 B
    SGD-momentum  S=1 momentum_buffer                      5 elements  20 B

The state buffers are torch's state keys for the hyperparameters in
:mod:`adamkit.benchmarking.rule_cases` (the step counter is a scalar and is not counted).
"""

STATE_BUFFERS = {
    "Adam": ("exp_avg", "exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq"),
    "AMSGrad": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "Adamax": ("exp_avg", "exp_inf"),
    "Adadelta": ("square_avg", "acc_delta"),
    "RMSprop": ("square_avg",),
    "Adagrad": ("sum",),
    "SGD-momentum": ("momentum_buffer",),
}


def elements_per_param(rule):
    """Array elements read plus written per parameter per step by ``rule``."""
    return 3 + 2 * len(STATE_BUFFERS[rule])


def bytes_per_param(rule, itemsize=4):
    """Bytes moved per parameter per step by ``rule`` for elements of ``itemsize`` bytes."""
    return elements_per_param(rule) * itemsize
