"""What the Lion parity tests share: 60 float64 steps on two parameter groups of sizes 1, 7, 17
and 4097, with non-default hyperparameters and weight decay, the rule and the transcription
run on them, and the comparison at 1e-12.

Every reference scales its weight decay by the learning rate, as the paper's Algorithm 2:
θ ← θ − γ·(sign(c) + λθ), which adamkit's ``decoupled_weight_decay=True`` is.

- ``lion_pytorch.Lion`` (default ``decoupled_weight_decay=False``): ``θ·(1 − γλ)``, the same.
  Its ``decoupled_weight_decay=True`` divides λ by the initial learning rate γ₀: ``θ·(1 − γλ/γ₀)``,
  which is adamkit's with λ/γ₀. It has no L2 decay and no ``maximize``.
- ``pytorch_optimizer.Lion`` (default ``weight_decouple=True, fixed_decay=False``): ``θ·(1 − γλ)``;
  ``weight_decouple=False`` adds λθ to the gradient, as adamkit's L2 decay.
- ``optax.lion``: ``u = −γ·(sign(c) + λθ)``, so ``θ·(1 − γλ) − γ·sign(c)`` up to rounding.
"""

import numpy as np

from adamkit import specs
from tests.cases import GROUP_OF_SIZE, SIZES, gradients, initial_params
from tests.reference.lion import lion as reference_lion
from tests.rules._compare import assert_close
from tests.rules._drive import run_rule

STEPS = 60
RELATIVE = 1e-12
FIRST_GROUP = {"lr": 3e-3, "betas": (0.85, 0.97), "weight_decay": 0.2}
SECOND_GROUP = {"lr": 1e-2, "betas": (0.95, 0.98), "weight_decay": 0.05}
GROUPS = (FIRST_GROUP, SECOND_GROUP)


def problem():
    """``(params, grads)``: float64 parameters of every size, and ``grads[t][i]`` for each step."""
    return initial_params("float64"), gradients("float64", steps=STEPS)


def check_against_rule_and_reference(finals, exp_avgs, params, grads, groups=GROUPS, **options):
    """Each package's final parameters and ``exp_avg`` equal adamkit's rule and the paper's
    transcription run with the hyperparameters of each parameter's group in ``groups`` and
    adamkit's ``options``, to 1e-12 relative."""
    assert len(finals) == len(exp_avgs) == len(SIZES)
    for index, param in enumerate(params):
        hyper = {**groups[GROUP_OF_SIZE[index]], **options}
        own = [step[index] for step in grads]
        rule_param, rule_state = run_rule("Lion", {**specs.LION.defaults, **hyper}, param, own)
        reference_param, reference_state = reference_lion(param, own, **hyper)
        for what, expected, expected_avg in (
            ("rule", rule_param, rule_state["exp_avg"]),
            ("transcription", reference_param, reference_state["exp_avg"]),
        ):
            assert_close(np.asarray(finals[index]), expected, RELATIVE, f"size {param.size}: param vs {what}")
            assert_close(np.asarray(exp_avgs[index]), expected_avg, RELATIVE, f"size {param.size}: exp_avg vs {what}")
