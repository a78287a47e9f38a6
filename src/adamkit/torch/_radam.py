"""``adamkit.torch.RAdam``, the drop-in for ``torch.optim.RAdam`` (:func:`adamkit.rules.radam`)."""

import torch
from torch.optim import radam
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam (:func:`adamkit.rules.radam`); ``decoupled_weight_decay=True`` makes it RAdamW.

    Each parameter takes the rectified adaptive step once its own step count makes the
    approximated SMA longer than 5, momentum SGD before. ``state_dtype="int8"`` keeps large
    float32 parameters' ``exp_avg`` and ``exp_avg_sq`` 8-bit block-wise; a sparse gradient is
    stepped row by row (``sparse_mode="lazy"``, the default), which torch's RAdam refuses; see
    :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.RADAM

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        sparse_mode: str = "lazy",
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
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
                decoupled_weight_decay=decoupled_weight_decay,
                differentiable=differentiable,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim.radam.radam``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(5)]
        has_complex = torch_class._init_group(self, group, *lists)
        beta1, beta2 = group["betas"]
        radam.radam(
            *lists,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            foreach=group["foreach"],
            capturable=group["capturable"],
            differentiable=group["differentiable"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            has_complex=has_complex,
        )
