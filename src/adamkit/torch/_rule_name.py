"""The rule a ``state_dict`` was saved by, so that another rule's checkpoint is refused.

Rules may keep state under the same keys with other meanings: ADOPT's ``exp_avg_sq`` is the
second moment before the update and its first step only initialises it, RAdam's is Adam's.
torch.optim's checkpoints do not say which optimizer saved them, and torch loads one of its
classes' into another when the keys fit (an Adam checkpoint into AdamW); adamkit keeps that
contract between torch.optim's classes. adamkit's optimizers save the optimizer's name under
the key ``"rule"`` of each saved parameter group (a key torch's classes ignore, which survives
``ZeroRedundancyOptimizer`` and distributed checkpoints, which keep the groups' keys); loading
refuses a checkpoint that names another rule unless torch.optim has both classes, and leaves
the key out of the optimizer's groups. A checkpoint without the key (torch.optim's, the
reference packages', adamkit's before it wrote the key) cannot be told apart and loads wherever
its keys and values fit.
"""

import torch

RULE_KEY = "rule"


class NamedState:
    """``state_dict()`` with the optimizer's rule under ``RULE_KEY`` in each saved group."""

    def state_dict(self):
        saved = super().state_dict()
        return {**saved, "param_groups": [{**group, RULE_KEY: self.spec.name} for group in saved["param_groups"]]}


def check_rule(spec, saved_groups):
    """Raise ``ValueError`` if a group of ``saved_groups`` names a rule other than ``spec``'s
    whose state an optimizer of ``spec`` cannot take: any but one of torch.optim's classes, when
    ``spec`` is one."""
    for index, group in enumerate(saved_groups):
        if not isinstance(group, dict) or RULE_KEY not in group:
            continue
        saved, where = group[RULE_KEY], f"state_dict['param_groups'][{index}][{RULE_KEY!r}]"
        if not isinstance(saved, str):
            raise ValueError(f"{where} must name an optimizer, got {type(saved).__name__}")
        if saved == spec.name or (_in_torch_optim(saved) and _in_torch_optim(spec.name)):
            continue
        raise ValueError(
            f"state_dict was saved by {saved} ({where}), not {spec.name}: another rule's state means "
            "something else, even under the same keys"
        )


def without_rule(groups):
    """The saved ``groups`` without ``RULE_KEY``, which the optimizer's groups do not hold."""
    return [{key: value for key, value in group.items() if key != RULE_KEY} for group in groups]


def _in_torch_optim(name):
    return isinstance(getattr(torch.optim, name, None), type)
