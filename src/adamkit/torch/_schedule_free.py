"""``adamkit.torch.AdamWScheduleFree``, the drop-in for ``schedulefree.AdamWScheduleFree`` (the
authors' package): its signature, its state (``z``, ``exp_avg_sq``), its group keys (``k``,
``train_mode``, ``weight_sum``, ``lr_max``, ``scheduled_lr``) and its ``train()``/``eval()``.

torch.optim has no such optimizer, so the class takes none of torch's implementation flags.
``schedulefree``'s groups hold its ``foreach`` flag, the choice between its for-loop and its
foreach implementation of the same rule, and its ``step`` reads it: the ``state_dict`` saves
``foreach=False`` in each group (its for-loop, which the rule follows line by line), and
loading drops the flag, so that a checkpoint of either optimizer loads into the other and the
run continues.
"""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.rules._spec import plain
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import stored_betas

# schedulefree's group key for its implementation choice; False is its for-loop.
_FOREACH = "foreach"


class AdamWScheduleFree(Optimizer):
    r"""Schedule-Free AdamW (:func:`adamkit.rules.schedule_free_adamw`; Defazio et al., *The Road
    Less Scheduled*, NeurIPS 2024): AdamW without a learning-rate schedule, whose model is the
    weighted average :math:`x` of its iterates :math:`z`, with gradients taken at the
    interpolation :math:`y = (1-\beta_1)z + \beta_1 x`.

    ``warmup_steps`` warms the learning rate up linearly; the average weighs step :math:`k` by
    :math:`k^r\,\gamma_{\max}^{p}` (``r``, ``weight_lr_power``). ``weight_decay`` is taken at
    :math:`y`, as ``schedulefree``'s default.

    **Modes.** During training the parameters hold :math:`y`; the model is meant to be
    evaluated, and saved, at :math:`x`. Call ``optimizer.train()`` before training (a new
    optimizer is in eval mode, and ``step`` raises ``RuntimeError`` there, as ``schedulefree``
    raises) and ``optimizer.eval()`` before evaluating or saving a checkpoint; each moves the
    parameters in place between the two points (``p.lerp_(z, ...)``, as ``schedulefree``).
    Call them together with ``model.train()``/``model.eval()``.

    **BatchNorm.** Running statistics are gathered at :math:`y` during training, not at the
    :math:`x` the model is evaluated at, so they do not fit :math:`x`. As the ``schedulefree``
    README says: before evaluating, put the optimizer in eval mode, then recompute the
    statistics at :math:`x` by running a few training batches through the model in
    ``model.train()`` mode under ``torch.no_grad()`` (resetting them first with
    ``module.reset_running_stats()``), then ``model.eval()``. Layer norm and models without
    running statistics need nothing.

    ``state_dtype="fp32"`` keeps the state of bfloat16 parameters in float32. ``"int8"`` and
    ``"bf16"`` are refused: ``z`` is not a moment but a copy of the parameters, which 8 bits
    cannot hold. Sparse gradients are refused: every element of :math:`y` moves towards
    :math:`z` at every step, so a step cannot be lazy in the rows a gradient holds.
    """

    spec = specs.ADAMWSCHEDULEFREE

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
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
                betas=stored_betas(betas),
                eps=eps,
                weight_decay=weight_decay,
                warmup_steps=warmup_steps,
                r=r,
                weight_lr_power=weight_lr_power,
                **self.spec.group_state,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    @torch.no_grad()
    def eval(self) -> None:
        """Put the parameters at :math:`x`, where the model is evaluated and saved."""
        self._move(train_mode=False)

    @torch.no_grad()
    def train(self) -> None:
        """Put the parameters at :math:`y`, where the gradients are taken."""
        self._move(train_mode=True)

    def _move(self, train_mode):
        for group in self.param_groups:
            if group["train_mode"] == train_mode:
                continue
            beta1 = plain(group["betas"][0])
            weight = 1 - beta1 if train_mode else 1 - 1 / beta1
            for param in group["params"]:
                state = self.state[param]
                if "z" in state:
                    param.lerp_(end=state["z"].to(param.device, param.dtype), weight=weight)
            group["train_mode"] = train_mode

    def state_dict(self):
        """torch's ``state_dict``, each group with ``schedulefree``'s ``foreach=False``."""
        saved = super().state_dict()
        return {**saved, "param_groups": [{**group, _FOREACH: False} for group in saved["param_groups"]]}

    def load_state_dict(self, state_dict):
        """Load as :meth:`adamkit.torch.Optimizer.load_state_dict`, without ``schedulefree``'s
        ``foreach`` flag (see the module docstring)."""
        if isinstance(state_dict, dict) and isinstance(state_dict.get("param_groups"), list):
            groups = [
                {key: value for key, value in group.items() if key != _FOREACH} if isinstance(group, dict) else group
                for group in state_dict["param_groups"]
            ]
            state_dict = {**state_dict, "param_groups": groups}
        super().load_state_dict(state_dict)
