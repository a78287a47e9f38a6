"""What the parity tests of AdaBelief against other packages share: the rule run in float64
over the sizes of the case table in two parameter groups, 60 steps."""

import numpy as np

from tests.cases import GROUP_OF_SIZE, gradients, initial_params
from tests.rules._compare import assert_close
from tests.rules._drive import group_hyperparameters, run_rule

STEPS = 60
RELATIVE = 1e-12


def problem():
    """``(params, grads)``: float64 parameters of sizes 1, 7, 17, 4097 and 60 steps of gradients."""
    return initial_params("float64"), gradients("float64", steps=STEPS)


def rule_results(groups):
    """The rule's final ``(param, state)`` of each parameter, with ``groups[g]`` the
    hyperparameters of group ``g`` (sizes 1 and 17 in group 0, 7 and 4097 in group 1)."""
    params, grads = problem()
    return [
        run_rule("AdaBelief", group_hyperparameters("AdaBelief", groups[group]), param, [step[i] for step in grads])
        for i, (param, group) in enumerate(zip(params, GROUP_OF_SIZE))
    ]


def assert_same(results, finals, states=None):
    """The rule's ``results`` equal another package's final parameters (and states, by key)."""
    for index, ((param, state), final) in enumerate(zip(results, finals, strict=True)):
        assert_close(final, param, RELATIVE, f"param {index}")
        for key, value in (states[index] if states else {}).items():
            assert_close(value, state[key], RELATIVE, f"param {index} {key}")


def torch_groups(torch, params, groups):
    """float64 torch parameters in the rule's two groups, and the parameter list."""
    tensors = [torch.nn.Parameter(torch.tensor(p)) for p in params]
    return [
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == group], **hyper}
        for group, hyper in enumerate(groups)
    ], tensors


def run_torch(torch, optimizer, tensors, grads, sign=1.0):
    """Step ``optimizer`` through ``grads`` (times ``sign``); return the final arrays."""
    for step in grads:
        for tensor, grad in zip(tensors, step):
            tensor.grad = torch.tensor(sign * grad)
        optimizer.step()
    return [np.asarray(t.detach()) for t in tensors]
