"""``adamkit.torch.ADOPT``: an optimizer torch.optim does not have, with the authors'
hyperparameters (github.com/iShohei220/adopt) under adamkit's names.

Off the CPU it runs its rule as multi-tensor torch operations (:mod:`adamkit.torch._multi_tensor`),
since there is no torch implementation to call; so it takes none of torch's implementation flags.
"""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import stored_betas


class ADOPT(Optimizer):
    """ADOPT (:func:`adamkit.rules.adopt`, Taniguchi et al., NeurIPS 2024): Adam that
    normalises each gradient by the second moment of the steps before it, clipped to
    :math:`\\pm k^{1/4}` at the k-th update; the first step only initialises the second moment.

    ``weight_decay`` is L2 (added to the gradient) by default, decoupled
    (:math:`\\theta \\leftarrow \\theta - \\gamma\\lambda\\theta` at each update) with
    ``decoupled_weight_decay=True``, as the authors' ``decouple``. ``state_dtype="int8"`` or
    ``"bf16"`` keeps large float32 parameters' ``exp_avg`` and ``exp_avg_sq`` compact; see
    :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.ADOPT

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.9999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
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
                betas=stored_betas(betas),
                eps=eps,
                weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )
