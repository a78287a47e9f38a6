"""``adamkit.torch.AdaBelief``, which torch.optim does not have: its signature is the rule's
(:func:`adamkit.rules.adabelief`), its state keys those of the authors' package
``adabelief_pytorch`` (``step``, ``exp_avg``, ``exp_avg_var``, ``max_exp_avg_var``).

On the CPU adamkit's kernels step it; tensors on other devices are stepped by the rule run as
multi-tensor torch operations (:mod:`adamkit.torch._multi_tensor`), a constant number of them
per step. With no torch.optim implementation to call, it takes none of torch's implementation
flags (``foreach``, ``fused``, ``capturable``, ``differentiable``).
"""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import stored_betas


class AdaBelief(Optimizer):
    """AdaBelief (:func:`adamkit.rules.adabelief`): decoupled weight decay by default
    (``decoupled_weight_decay=False`` is L2), ``amsgrad`` keeps ``max_exp_avg_var``, and
    ``rectify=True`` is the authors' RAdam rectification (SGD with momentum while the
    approximated moving-average length ρ_t is below 5).

    The authors' package ``adabelief_pytorch.AdaBelief`` defaults to ``rectify=True``; here, as
    in the paper's Algorithm 2 and optax, it is off. ``state_dtype="int8"`` or ``"bf16"`` keeps
    large float32 parameters' ``exp_avg`` and ``exp_avg_var`` compact; see
    :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.ADABELIEF

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = True,
        amsgrad: bool = False,
        rectify: bool = False,
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
                amsgrad=amsgrad,
                rectify=rectify,
                maximize=maximize,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )
