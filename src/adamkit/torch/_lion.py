"""Lion (:func:`adamkit.rules.lion`), which torch.optim does not have: its signature is that of
``lion_pytorch.Lion`` with adamkit's flags for the decay and the direction, and its state key
(``exp_avg``) is the one ``lion_pytorch`` and ``pytorch_optimizer`` save. The state also counts
the parameter's steps (``step``, as torch.optim's optimizers count them), which the rule never
reads: with ``state_dtype="bf16"`` the count seeds the stochastic rounding, so that each step
rounds with fresh bits and a resumed run continues bit for bit. A checkpoint without it
(``lion_pytorch``'s, or an older adamkit's) loads with the count at 0; ``lion_pytorch`` loads one
with it and ignores it.

Off the CPU, where torch.optim has no implementation to call, the rule runs as multi-tensor torch
operations on the tensors' device (:mod:`adamkit.torch._multi_tensor`). None of torch's
implementation flags (``foreach``, ``fused``, ``capturable``, ``differentiable``) is taken, since
there is no torch implementation for them to choose.
"""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import stored_betas


class Lion(Optimizer):
    r"""Lion, evolved sign momentum (:func:`adamkit.rules.lion`; Chen et al., 2023, Algorithm 2).

    Each coordinate moves by exactly ``lr`` per step, so Lion's learning rate is typically 3-10x
    smaller than AdamW's and its ``weight_decay`` as much larger. ``decoupled_weight_decay=True``
    (the default, the paper's) decays by :math:`\theta(1-\gamma\lambda)` as ``lion_pytorch``'s
    and ``pytorch_optimizer``'s defaults and ``optax.lion`` do; ``False`` adds :math:`\lambda\theta`
    to the gradient (L2). ``state_dtype="int8"`` or ``"bf16"`` keeps large float32 parameters'
    ``exp_avg`` compact (:class:`adamkit.torch.Optimizer`); a sparse gradient is stepped row by
    row (``sparse_mode="lazy"``, weight decay on those rows only) or densified (``"dense"``).
    ``cautious=True`` masks the update where its sign disagrees with the gradient's and rescales
    it by the kept fraction (Liang et al., 2024; :mod:`adamkit.rules.cautious`).
    """

    spec = specs.LION

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = True,
        maximize: bool = False,
        cautious: bool = False,
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
                weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
                cautious=cautious,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )
