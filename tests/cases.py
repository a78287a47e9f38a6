"""The one table of cases every path is checked on.

A case is an optimizer, its constructor hyperparameters, and per-group overrides for a second
parameter group; each spec lists its own beside its rule (``Spec.cases``). Every case runs on
parameters of sizes 1, 7, 17 and 4097 (none a multiple of a SIMD width) spread over two
groups, in float32 and float64.
"""

from dataclasses import dataclass, field

import numpy as np

from adamkit import specs

SIZES = (1, 7, 17, 4097)
# Which sizes go to which group: group 0 holds sizes 1 and 17, group 1 holds 7 and 4097.
GROUP_OF_SIZE = (0, 1, 0, 1)
DTYPES = ("float32", "float64")
STEPS = 50


@dataclass(frozen=True)
class Case:
    optimizer: str
    hyper: dict = field(default_factory=dict)
    second_group: dict = field(default_factory=dict)

    @property
    def id(self):
        described = ",".join(f"{k}={v}" for k, v in self.hyper.items()) or "defaults"
        override = ",".join(f"{k}={v}" for k, v in self.second_group.items())
        return f"{self.optimizer}[{described}]" + (f"+group[{override}]" if override else "")


CASES = tuple(Case(spec.name, hyper, second) for spec in specs.ALL for hyper, second in spec.cases)
"""Every spec's cases (:attr:`adamkit.rules._spec.Spec.cases`, beside its rule), in registry order."""
NATIVE_CASES = tuple(case for case in CASES if specs.BY_NAME[case.optimizer].native)
"""The cases of the rules the C kernels step (:attr:`adamkit.rules._spec.Spec.native`), which
alone take Kahan summation, bfloat16 on the CPU and the multi-tensor device path."""



def initial_params(dtype, seed=0):
    """The starting parameters of every case: one array per entry of ``SIZES``."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size).astype(dtype) for size in SIZES]


def gradients(dtype, steps=STEPS, seed=1):
    """Gradients for each step: ``result[t][i]`` is the gradient of parameter ``i`` at step ``t``.

    Magnitudes vary over six orders and some entries are exactly zero, so that ε matters.
    """
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-4, 2, size=len(SIZES))
    result = []
    for _ in range(steps):
        grads = []
        for size, scale in zip(SIZES, scales):
            grad = rng.standard_normal(size) * scale
            grad[rng.random(size) < 0.05] = 0.0
            grads.append(grad.astype(dtype))
        result.append(grads)
    return result


def param_groups(case, params):
    """Split ``params`` into the case's two groups, as a torch-style list of dicts."""
    first = [p for p, g in zip(params, GROUP_OF_SIZE) if g == 0]
    second = [p for p, g in zip(params, GROUP_OF_SIZE) if g == 1]
    return [{"params": first}, {"params": second, **case.second_group}]


def group_order(values):
    """Reorder per-size ``values`` to the order parameters appear across groups."""
    return [v for g in (0, 1) for v, group in zip(values, GROUP_OF_SIZE) if group == g]
