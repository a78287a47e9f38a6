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

A rule with a kernel of its own (``Spec.kernel_module``: Adafactor) moves what its kernel's
``elements_moved(shape)`` says per parameter of each shape, averaged over a workload's
parameters: 8 elements (32 B) for Adafactor's vectors, 6 (24 B) for its matrices.

The state buffers are the spec's slots active under the hyperparameters of each case of
:mod:`adamkit.benchmarking.rule_cases` (the step counter is a scalar and is not counted).
"""

import importlib
import math

from adamkit import specs
from adamkit.benchmarking.rule_cases import BY_NAME, CASES


def _state_buffers(optimizer, hyperparameters):
    """The state keys ``optimizer`` with ``hyperparameters`` (besides its defaults) reads and
    writes for a vector parameter, as the workloads' (Adafactor's vectors keep ``variance``)."""
    spec = specs.BY_NAME[optimizer]
    return tuple(spec.slot_shapes({**spec.defaults, **hyperparameters}, (1,)))


STATE_BUFFERS = {case.name: _state_buffers(case.optimizer, case.hyperparameters) for case in CASES}
"""The state keys each benchmarked case reads and writes at every step."""


def elements_per_param(rule, shapes=None):
    """Array elements read plus written per parameter per step by ``rule`` on parameters of
    ``shapes`` (which only a rule with a kernel of its own reads; default one vector)."""
    case = BY_NAME[rule]
    kernel_module = specs.BY_NAME[case.optimizer].kernel_module
    if kernel_module is not None:
        kernel = importlib.import_module(f"adamkit.kernels.{kernel_module}")
        shapes = shapes or ((1,),)
        moved = sum(kernel.elements_moved(shape) * math.prod(shape) for shape in shapes)
        return moved / sum(math.prod(shape) for shape in shapes)
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


def bytes_per_param(rule, itemsize=4, shapes=None):
    """Bytes moved per parameter per step by ``rule`` for elements of ``itemsize`` bytes, on
    parameters of ``shapes`` (:func:`elements_per_param`)."""
    return elements_per_param(rule, shapes) * itemsize
