"""``AdEMAMix`` (:func:`adamkit.rules.ademamix`), the optimizer of Pagliardini, Ablin & Grangier
(2024), with the signature of its reference implementations and adamkit's options."""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer

__all__ = ["AdEMAMix"]


class AdEMAMix(Optimizer):
    r"""AdEMAMix: Adam whose momentum mixes a fast average (β1, corrected for bias) with a slow
    one (β3, not corrected), weighted by α:

    .. math::
        \theta \leftarrow \theta - \gamma\Big(\frac{\hat m_1 + \alpha\, m_2}{\sqrt{\hat v} + \epsilon}
            + \lambda\theta\Big)

    With ``t_alpha_beta3`` (a number of steps), α and β3 warm up by the paper's schedulers at
    each parameter's step. ``decoupled_weight_decay=False`` adds λθ to the gradient instead (L2).
    State: ``step``, ``exp_avg_fast``, ``exp_avg_slow`` and ``exp_avg_sq``, the authors' keys.
    ``state_dtype="int8"`` or ``"bf16"`` keeps the three averages of large float32 parameters
    compact; see :class:`adamkit.torch.Optimizer`. Off the CPU the step is the rule on lists of
    tensors (:mod:`adamkit.torch._multi_tensor`). Sparse gradients are refused.
    ``cautious=True`` masks the mixture where its sign disagrees with the gradient's and rescales
    it by the kept fraction (Liang et al., 2024; :mod:`adamkit.rules.cautious`).
    """

    spec = specs.ADEMAMIX

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
        alpha: float = 5.0,
        t_alpha_beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = True,
        maximize: bool = False,
        cautious: bool = False,
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        self.spec.check_group(dict(betas=betas, t_alpha_beta3=t_alpha_beta3))
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                alpha=alpha,
                t_alpha_beta3=t_alpha_beta3,
                eps=eps,
                weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
                cautious=cautious,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )
