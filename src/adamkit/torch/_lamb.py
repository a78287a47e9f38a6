"""``adamkit.torch.LAMB``: LAMB (:func:`adamkit.rules.lamb`), which torch.optim does not have.

Its signature is that of the rule (optax's hyperparameters under torch's names), and its
state holds torch's Adam keys: ``step``, ``exp_avg`` and ``exp_avg_sq``. The trust ratio is
per whole parameter, so a sparse gradient is refused (``TypeError``). A parameter sharded
across processes (FSDP2) gets the norms of the whole parameter: the C kernels sum the squared
norms of its shards over the processes (:mod:`adamkit.torch._shard_sums`), and where they do
not step it (``fused=False``, off the CPU) it is refused with ``NotImplementedError`` at the
step. Replicated parameters (DDP, ZeroRedundancyOptimizer) are whole on every process.
"""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch import _shard_sums as shard_sums
from adamkit.torch._tensor_hyperparameters import stored_betas


class LAMB(Optimizer):
    """LAMB (:func:`adamkit.rules.lamb`): Adam's bias-corrected ratio plus decoupled weight
    decay, scaled per parameter by the trust ratio ``‖θ‖/‖r‖`` (at most ``trust_clip``).

    On the CPU the C kernels step it in two passes over each parameter (the norms, then the
    update), in the fixed order of summation of :func:`adamkit.rules.lamb.squared_norm`, so
    the bits do not depend on the thread count. Elsewhere it runs as multi-tensor torch
    operations, whose norms are torch's reductions.
    """

    spec = specs.LAMB

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        trust_clip: float | None = None,
        maximize: bool = False,
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
                betas=stored_betas(betas),
                eps=eps,
                weight_decay=weight_decay,
                trust_clip=trust_clip,
                maximize=maximize,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _reject(self, group_index, param, group):
        if param.grad.layout != torch.strided:
            index = next(i for i, p in enumerate(group["params"]) if p is param)
            raise TypeError(
                f"LAMB does not take sparse gradients (param_groups[{group_index}]['params'][{index}] "
                f"has a {param.grad.layout} gradient): its trust ratio is over the whole parameter"
            )
        super()._reject(group_index, param, group)

    def _stepped_params(self, group, group_index):
        stepped = super()._stepped_params(group, group_index)
        shard_sums.check(self, group, "LAMB's trust ratio", f"param_groups[{group_index}]['params']")
        return stepped
