"""Bytes a rule must move per parameter per step: the numerator of the bandwidth bound.

A step reads the parameter, its gradient and each state buffer once, and writes back the
parameter and each state buffer once; the gradient is only read. With ``S`` state buffers::

    elements moved = (1 param + 1 grad + S states) read + (1 param + S states) written = 3 + 2S

Every array that is written was read in the same pass, so its cache lines are already present
and there is no write-allocate traffic to add. For fp32 (4 bytes per element), Adam
(``S = 2``: ``exp_avg``, ``exp_avg_sq``) moves 7 elements, 28 B; AMSGrad (``S = 3``, with
``max_exp_avg_sq``) 9 elements, 36 B. ``cautious=True`` reads the parameter, the gradient and
the state once more (:func:`step_elements`): AdamW moves 11 elements, 44 B.

A rule with a norm pass (``Spec.norm_pass``: LAMB) first reads the parameter, gradient and
states and writes the states, then reads the parameter and states again and writes the
parameter: ``1 + S`` elements more, 10 (40 B) for LAMB's fp32 state.

The state buffers are the spec's slots active under the hyperparameters of each case of
:mod:`adamkit.benchmarking.rule_cases` (the step counter is a scalar and is not counted).
"""

from adamkit import specs
from adamkit.benchmarking.rule_cases import BY_NAME, CASES


def _state_buffers(optimizer, hyperparameters):
    """The state keys ``optimizer`` with ``hyperparameters`` (besides its defaults) reads and writes."""
    spec = specs.BY_NAME[optimizer]
    return tuple(slot.key for slot in spec.active_slots({**spec.defaults, **hyperparameters}))


STATE_BUFFERS = {case.name: _state_buffers(case.optimizer, case.hyperparameters) for case in CASES}
"""The state keys each benchmarked case reads and writes at every step."""


def elements_per_param(rule):
    """Array elements read plus written per parameter per step by ``rule``."""
    case = BY_NAME[rule]
    return step_elements(case.optimizer, case.hyperparameters)


def step_elements(optimizer, hyperparameters):
    """Array elements read plus written per parameter per step by ``optimizer`` with
    ``hyperparameters`` (besides its defaults): ``3 + 2S``; with ``cautious=True`` the
    ``2 + S`` that the first of the two passes of ``csrc/cautious.c`` reads (the parameter, the
    gradient and the state, to count the mask before any element is written); with a norm pass
    (``Spec.norm_pass``) the ``1 + S`` of the second pass."""
    buffers = len(_state_buffers(optimizer, hyperparameters))
    first_pass = 2 + buffers if hyperparameters.get("cautious") else 0
    norm_pass = 1 + buffers if specs.BY_NAME[optimizer].norm_pass else 0
    return 3 + 2 * buffers + first_pass + norm_pass


def bytes_per_param(rule, itemsize=4):
    """Bytes moved per parameter per step by ``rule`` for elements of ``itemsize`` bytes."""
    return elements_per_param(rule) * itemsize
