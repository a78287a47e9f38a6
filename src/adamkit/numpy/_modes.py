"""``train()`` and ``eval()`` of the NumPy optimizers whose rule has two points (Schedule-Free:
the parameters hold y while training, and the model is evaluated at x), as ``schedulefree``'s
optimizers have them (``Spec.eval_point``).

A new optimizer is in eval mode, and its ``step`` raises ``RuntimeError`` until ``train()``.
Each call moves, in place, the parameters of the groups not yet in that mode, those whose
state can tell where the other point is (a parameter never stepped stays), and records the
mode in ``group["train_mode"]``, which ``state_dict`` saves.
"""

import numpy as np

from adamkit.rules._spec import Spec


class Modes:
    """``train()`` and ``eval()`` for :class:`adamkit.numpy.Optimizer` subclasses."""

    spec: Spec
    param_groups: list[dict]

    def train(self) -> None:
        """Put the parameters at the training point (y), where gradients are taken."""
        self._move(self.spec.train_point, train_mode=True)

    def eval(self) -> None:
        """Put the parameters at the evaluation point (x), to evaluate or save the model."""
        self._move(self.spec.eval_point, train_mode=False)

    def _move(self, point, train_mode):
        for group in self.param_groups:
            if group["train_mode"] == train_mode:
                continue
            for param in group["params"]:
                state = self._held_state(param)
                moved = None if state is None else point(param, state, group)
                if moved is not None:
                    np.copyto(param, moved)
            group["train_mode"] = train_mode
