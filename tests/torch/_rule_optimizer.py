"""The stand-in for ``torch.optim.<name>`` where torch.optim has no such optimizer (ADOPT):
the rule of the spec on NumPy views, one parameter at a time, with torch's state layout.

Comparisons of adamkit.torch with "torch" then compare its fast paths with the rule itself.
"""

import numpy as np
import torch

from adamkit import specs


class RuleOptimizer(torch.optim.Optimizer):
    """``spec``'s rule over CPU tensors: ``step`` a float32 tensor, the slots tensors like the
    parameter, the hyperparameters positional in ``spec.positional`` order."""

    spec = None

    def __init__(self, params, *args, **kwargs):
        defaults = {**self.spec.defaults, **dict(zip(self.spec.positional, args)), **kwargs}
        self.spec.validate(defaults)
        defaults.update(self.spec.group_state)  # Schedule-Free's k, weight_sum...
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        keys = [slot.key for slot in self.spec.slots]
        for group in self.param_groups:
            hyper = self.spec.rule_arguments(group)
            group_count = self.spec.group_count(group)
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    if self.spec.counts_steps:
                        state["step"] = torch.tensor(0.0)
                    for slot in self.spec.active_slots(group):
                        if slot.fill is not None:  # else the rule makes it (Schedule-Free's z)
                            state[slot.key] = torch.full_like(param, slot.initial_value(group), memory_format=torch.preserve_format)
                if self.spec.counts_steps:
                    state["step"] += 1
                step_argument = self.spec.step_argument(state["step"].item() if self.spec.counts_steps else group_count)
                result = self.spec.rule(
                    _array(param),
                    _array(param.grad),
                    *(_array(state[key]) if key in state else None for key in keys),
                    **step_argument,
                    **hyper,
                )
                _real(param).copy_(torch.from_numpy(np.asarray(result.param)))
                for key in keys:
                    if key in state:
                        _real(state[key]).copy_(torch.from_numpy(np.asarray(getattr(result, key))))
                    elif getattr(result, key) is not None:
                        created = torch.from_numpy(np.array(getattr(result, key)))
                        state[key] = torch.view_as_complex(created) if param.is_complex() else created
        return loss


def _real(tensor):
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _array(tensor):
    return _real(tensor.detach()).numpy().copy()


def rule_optimizer(name):
    """The stand-in class for the optimizer ``name`` (a spec's name)."""
    return type(name, (RuleOptimizer,), {"spec": specs.BY_NAME[name]})
