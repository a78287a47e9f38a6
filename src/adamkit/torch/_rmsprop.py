"""``adamkit.torch.RMSprop``, the drop-in for ``torch.optim.RMSprop`` (2.13)."""

import torch
from torch.optim import rmsprop
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (:func:`adamkit.rules.rmsprop`)."""

    spec = specs.RMSPROP

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                alpha=alpha,
                eps=eps,
                centered=centered,
                weight_decay=weight_decay,
                capturable=capturable,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim.rmsprop.rmsprop``
        (:mod:`adamkit.torch._torch_step`)."""
        params, grads, square_avgs, momentum_buffers, grad_avgs, steps = lists = [[] for _ in range(6)]
        has_complex = torch_class._init_group(self, group, *lists)
        rmsprop.rmsprop(
            params,
            grads,
            square_avgs,
            grad_avgs,
            momentum_buffers,
            steps,
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            foreach=group["foreach"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
            capturable=group["capturable"],
            has_complex=has_complex,
        )
