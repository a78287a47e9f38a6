"""``adamkit.torch.NAdam``, the drop-in for ``torch.optim.NAdam`` (:func:`adamkit.rules.nadam`).

Its state is torch's: ``step``, ``mu_product`` (0-d tensors of torch's scalar dtype) and
``exp_avg``, ``exp_avg_sq``. ``mu_product`` is advanced as torch advances it
(``mu_product *= mu``, in its own dtype) before each step, and the kernels read it per tensor
with the step count (:class:`adamkit.rules.NAdamCount`), so a checkpoint of either optimizer
continues identically in the other.
"""

import torch
from torch.optim import nadam
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import check_tensor_lr

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam (:func:`adamkit.rules.nadam`); ``decoupled_weight_decay=True`` makes it NAdamW.

    torch.optim.NAdam refuses sparse gradients; here, as in :class:`adamkit.torch.Adam`,
    ``sparse_mode="lazy"`` (the default) steps only the rows a sparse gradient holds, with the
    parameter's ``step`` and ``mu_product``, and ``"dense"`` the densified gradient.
    ``state_dtype="int8"`` or ``"bf16"`` keeps large float32 parameters' ``exp_avg`` and
    ``exp_avg_sq`` compact; see :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.NADAM

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
        check_tensor_lr(lr)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
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
        """Step ``group`` with torch's own implementation, ``torch.optim.nadam.nadam``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(6)]
        has_complex = torch_class._init_group(self, group, *lists)
        beta1, beta2 = group["betas"]
        nadam.nadam(
            *lists,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            foreach=group["foreach"],
            capturable=group["capturable"],
            differentiable=group["differentiable"],
            has_complex=has_complex,
        )
