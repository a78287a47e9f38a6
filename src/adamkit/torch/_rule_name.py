"""The rule a ``state_dict`` was saved by, so that another rule's checkpoint is refused.

Rules may keep state under the same keys with other meanings: ADOPT's ``exp_avg_sq`` is the
second moment before the update and its first step only initialises it, RAdam's is Adam's.
torch.optim's checkpoints do not say which optimizer saved them, and torch loads one of its
classes' into another when the keys fit (an Adam checkpoint into AdamW); adamkit keeps that
contract between torch.optim's classes. adamkit's optimizers add the key ``"rule"`` (the
optimizer's name) beside ``"state"`` and ``"param_groups"``, which torch's loading ignores;
loading refuses a checkpoint that names another rule unless torch.optim has both classes. A
checkpoint without the key (torch.optim's, the reference packages', adamkit's before it wrote
the key) cannot be told apart and loads wherever its keys and values fit.
"""

import torch

RULE_KEY = "rule"


class NamedState:
    """``state_dict()`` with the optimizer's rule under :data:`RULE_KEY`."""

    def state_dict(self):
        return {**super().state_dict(), RULE_KEY: self.spec.name}


def check_rule(spec, state_dict):
    """Raise ``ValueError`` if ``state_dict`` names a rule other than ``spec``'s whose state an
    optimizer of ``spec`` cannot take: any but one of torch.optim's classes, when ``spec`` is one."""
    if RULE_KEY not in state_dict:
        return
    saved = state_dict[RULE_KEY]
    if not isinstance(saved, str):
        raise ValueError(f"state_dict[{RULE_KEY!r}] must name an optimizer, got {type(saved).__name__}")
    if saved == spec.name or (_in_torch_optim(saved) and _in_torch_optim(spec.name)):
        return
    raise ValueError(
        f"state_dict was saved by {saved} (state_dict[{RULE_KEY!r}]), not {spec.name}: another rule's "
        "state means something else, even under the same keys"
    )


def _in_torch_optim(name):
    return isinstance(getattr(torch.optim, name, None), type)
