"""``adamkit.torch.Adafactor``, the drop-in for ``torch.optim.Adafactor`` (2.13)."""

import torch
from torch.optim import _adafactor
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch import _adafactor_shards as shards
from adamkit.torch._shard_sums import is_sharded
from adamkit.torch._tensor_hyperparameters import check_tensor_lr
from adamkit.torch._torch_step import amp_arguments


class Adafactor(Optimizer):
    """Adafactor (:func:`adamkit.rules.adafactor`): factored second moments (``row_var``,
    ``col_var``) for parameters of two or more dimensions, a full ``variance`` for the others.

    Contiguous float32 and float64 CPU tensors are stepped by Adafactor's C kernel
    (``csrc/adafactor.c``, bitwise equal to the rule), other CPU tensors by the rule through
    NumPy; ``foreach=True``, bfloat16 CPU tensors and tensors off the CPU by torch's own
    implementation. As in torch, complex parameters raise ``RuntimeError`` at the step.
    Sharded parameters (FSDP2's ``DTensor``) are stepped with their sums over rows, columns and
    the whole tensor added over the processes (``adamkit.torch._adafactor_shards``, which
    says which quantities are whole on a shard and which shardings it refuses). adamkit's options other
    than ``nonfinite_grads`` and ``step_in_backward`` (``state_dtype``, ``kahan_summation``)
    are not taken.
    """

    spec = specs.ADAFACTOR

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        nonfinite_grads: str = "propagate",
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        check_tensor_lr(lr)
        super().__init__(
            params,
            dict(
                lr=lr,
                beta2_decay=beta2_decay,
                eps=eps,
                d=d,
                weight_decay=weight_decay,
                foreach=foreach,
                maximize=maximize,
            ),
            nonfinite_grads=nonfinite_grads,
            kahan_summation=False,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def add_param_group(self, param_group):
        """Add a group as torch does, refusing the sharded parameters it cannot step
        (:func:`adamkit.torch._adafactor_shards.check`)."""
        params = param_group.get("params") if isinstance(param_group, dict) else None
        if params is not None and not isinstance(params, set):  # torch refuses a set
            listed = [params] if isinstance(params, torch.Tensor) else list(params)
            param_group = {**param_group, "params": listed}
            shards.check({**self.defaults, **param_group}, f"param_groups[{len(self.param_groups)}]['params']")
        super().add_param_group(param_group)

    def _prepare(self, group_index, group):
        shards.check(group, f"param_groups[{group_index}]['params']")  # before torch's implementation is chosen
        return super()._prepare(group_index, group)

    def _stepped_params(self, group, group_index):
        for param in group["params"]:
            if param.grad is not None and param.is_complex():
                raise RuntimeError("Adafactor does not support complex parameters")
        return super()._stepped_params(group, group_index)

    def _init_state(self, param, group):
        super()._init_state(param, group)
        if is_sharded(param):
            shards.shard_state(param, self.state[param])

    def _update_round(self, group_index, group, params):
        """Step a round with a sharded parameter through :mod:`adamkit.torch._adafactor_shards`,
        which adds the sums that reach across shards over the processes; others as the base does."""
        if not any(is_sharded(param) for param in params):
            return super()._update_round(group_index, group, params)
        for param in params:
            self._init_state(param, group)
        states = [self.state[param] for param in params]
        shards.update(self.spec.rule_arguments(group), params, states, self._counts(group_index, group, states))
        self._plans[group_index] = None

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim._adafactor.adafactor``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(6)]
        has_complex = torch_class._init_group(self, group, *lists)
        eps1, eps2 = group["eps"]
        _adafactor.adafactor(
            *lists,
            d=group["d"],
            lr=group["lr"],
            beta2_decay=group["beta2_decay"],
            weight_decay=group["weight_decay"],
            eps1=eps1,
            eps2=eps2,
            foreach=group["foreach"],
            maximize=group["maximize"],
            has_complex=has_complex,
            **amp_arguments(self),
        )
