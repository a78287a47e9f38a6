"""``SparseAdam``, torch.optim's Adam for sparse gradients: adamkit's lazy Adam in the ε̂ form
(``adamkit.rules.adam.SPARSE_ADAM``), stepped by the lazy sparse kernel row by row."""

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from adamkit.rules.adam import SPARSE_ADAM
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import check_tensor_lr

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""torch.optim.SparseAdam: only the rows a sparse gradient holds are stepped, their moments
    too (:mod:`adamkit.torch._sparse`, lazy mode), with

    .. math::
        \theta \leftarrow \theta - \gamma\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\frac{m}{\sqrt v + \epsilon}

    and the per-parameter step :math:`t` counted at every step the parameter has a gradient.
    Its constructor's checks, its errors (``RuntimeError`` for a dense gradient), its groups and
    its state (``step``, ``exp_avg``, ``exp_avg_sq``; ``step`` a 0-d tensor, saved as an int) are
    torch's; checkpoints load both ways.
    ``nonfinite_grads`` and ``step_in_backward`` are adamkit's options; compact state and Kahan summation are not offered,
    since the lazy step keeps full-precision state of float16, float32 and float64 parameters.
    """

    spec = SPARSE_ADAM

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
        *,
        nonfinite_grads: str = "propagate",
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        # torch's checks and messages, before adamkit's checks of the same values.
        check_tensor_lr(lr)
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for index in (0, 1):
            if not 0.0 <= betas[index] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {index}: {betas[index]}")
        super().__init__(
            params,
            dict(lr=lr, betas=betas, eps=eps, maximize=maximize, **_fixed()),
            nonfinite_grads=nonfinite_grads,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )
        for kind, refused, reason in (
            ("Sparse", lambda p: p.is_sparse, "SparseAdam requires dense parameter tensors"),
            ("Complex", torch.is_complex, "SparseAdam does not support complex parameters"),
        ):
            where = [[i, j] for i, group in enumerate(self.param_groups) for j, p in enumerate(group["params"]) if refused(p)]
            if where:
                raise ValueError(f"{kind} params at indices {where}: {reason}")

    def state_dict(self):
        """The ``state_dict`` with each ``step`` a Python int, as torch's SparseAdam saves it:
        torch's step then computes its bias corrections in double, as adamkit's does."""
        saved = super().state_dict()
        steps_as_ints = {
            index: {**state, "step": int(state["step"])} if isinstance(state, dict) and "step" in state else state
            for index, state in saved["state"].items()
        }
        return {**saved, "state": steps_as_ints}

    def _prepare(self, group_index, group):
        """Refuse a dense gradient as torch does, before any group is stepped."""
        for param in group["params"]:
            if param.grad is not None and not param.grad.is_sparse:
                raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
        return super()._prepare(group_index, group)


def _fixed():
    """The Adam hyperparameters SparseAdam fixes: no weight decay, the ε̂ form, lazy rows."""
    return {name: SPARSE_ADAM.defaults[name] for name in SPARSE_ADAM.fixed}
