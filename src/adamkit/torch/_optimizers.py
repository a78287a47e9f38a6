"""Drop-in replacements for ``torch.optim``'s Adam family and baselines: one class per spec of
:data:`adamkit.specs.ALL`, named like it.

Signatures, defaults, keyword-only markers and ``state_dict`` layout are torch 2.13's, plus
adamkit's keyword-only options. The math of each class is the rule of its spec, and its
``_step_with_torch`` calls torch's functional implementation of the same optimizer. Every class
takes the keyword-only options ``nonfinite_grads``, ``state_dtype`` (``"fp32"``: float32 state
for bfloat16 parameters; the optimizers whose spec takes compact state also ``"int8"`` and
``"bf16"``), ``kahan_summation`` (:class:`adamkit.torch.Optimizer`), and ``step_in_backward``
with ``max_grad_norm`` (:mod:`adamkit.torch._in_backward`).

``sparse_mode`` (the specs with ``sparse_grads="lazy"``; also a parameter-group key) is how a
sparse COO gradient, as ``nn.Embedding(sparse=True)`` makes, is stepped: ``"lazy"``, the
default, steps only the rows it holds (weight decay included), ``"dense"`` takes the dense step
on the densified gradient. See :mod:`adamkit.torch._sparse`.

``foreach``, ``fused``, ``capturable`` and ``differentiable`` are torch's: where adamkit's
kernels do not serve, the step is torch.optim's own implementation with the same flags (see
:class:`adamkit.torch.Optimizer`).
"""

import torch
from torch.optim import adadelta, adagrad, adam, adamax, sgd
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.torch._tensor_hyperparameters import check_tensor_hyperparameters, stored_betas
from adamkit.torch._torch_step import amp_arguments
from adamkit.validation import check_bool


__all__ = ["Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad"]
"""The classes of the rules adamkit started with but RMSprop; RMSprop's and each later rule's
class live in their own modules (:mod:`adamkit.torch` gathers them)."""


class Adam(Optimizer):
    """Adam (:func:`adamkit.rules.adam`); ``decoupled_weight_decay=True`` makes it AdamW.

    ``cautious=True`` masks the update where its sign disagrees with the gradient's (Liang et al., 2024).
    ``eps_hat=True`` opts in to the ε̂ convention of Keras and ``SparseAdam``; with it, the lazy
    sparse step (``sparse_mode="lazy"``, the default) follows ``torch.optim.SparseAdam``.
    ``state_dtype="int8"`` keeps large float32 parameters' state 8-bit block-wise (about 2 bytes
    per parameter instead of 8), ``"fp32"`` keeps bfloat16 parameters' state in float32; see
    :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.ADAM

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        eps_hat: bool = False,
        cautious: bool = False,
        sparse_mode: str = "lazy",
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        check_tensor_hyperparameters(lr, betas, foreach, capturable)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=stored_betas(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
                differentiable=differentiable,
                fused=fused,
                decoupled_weight_decay=decoupled_weight_decay,
                eps_hat=eps_hat,
                cautious=cautious,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim.adam.adam``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(6)]
        has_complex = torch_class._init_group(self, group, *lists)
        beta1, beta2 = group["betas"]
        adam.adam(
            *lists,
            amsgrad=group["amsgrad"],
            has_complex=has_complex,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            foreach=group["foreach"],
            capturable=group["capturable"],
            differentiable=group["differentiable"],
            fused=group["fused"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            **amp_arguments(self),
        )


class AdamW(Adam):
    """AdamW (:func:`adamkit.rules.adam` with decoupled weight decay, default λ = 1e-2)."""

    spec = specs.ADAMW

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        eps_hat: bool = False,
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
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
            eps_hat=eps_hat,
            cautious=cautious,
            sparse_mode=sparse_mode,
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class Adamax(Optimizer):
    """Adamax (:func:`adamkit.rules.adamax`).

    ``state_dtype="int8"`` keeps large float32 parameters' ``exp_avg`` and ``exp_inf`` 8-bit
    block-wise (about 2 bytes per parameter instead of 8); see
    :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.ADAMAX

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
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
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                capturable=capturable,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim.adamax.adamax``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(5)]
        has_complex = torch_class._init_group(self, group, *lists)
        beta1, beta2 = group["betas"]
        adamax.adamax(
            *lists,
            eps=group["eps"],
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            foreach=group["foreach"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
            capturable=group["capturable"],
            has_complex=has_complex,
        )


class Adadelta(Optimizer):
    """Adadelta (:func:`adamkit.rules.adadelta`).

    ``state_dtype="int8"`` keeps large float32 parameters' ``square_avg`` and ``acc_delta``
    8-bit block-wise (about 2 bytes per parameter instead of 8); see
    :class:`adamkit.torch.Optimizer`.
    """

    spec = specs.ADADELTA

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
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
                rho=rho,
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
                capturable=capturable,
                foreach=foreach,
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
        """Step ``group`` with torch's own implementation, ``torch.optim.adadelta.adadelta``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(5)]
        has_complex = torch_class._init_group(self, group, *lists)
        adadelta.adadelta(
            *lists,
            lr=group["lr"],
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            foreach=group["foreach"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
            capturable=group["capturable"],
            has_complex=has_complex,
        )


class SGD(Optimizer):
    """SGD with momentum, dampening and Nesterov momentum (:func:`adamkit.rules.sgd`)."""

    spec = specs.SGD

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
        step_in_backward: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        check_bool("nesterov", nesterov)
        self.spec.check_group(dict(momentum=momentum, dampening=dampening, nesterov=nesterov))
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
                foreach=foreach,
                differentiable=differentiable,
                fused=fused,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim.sgd.sgd``
        (:mod:`adamkit.torch._torch_step`)."""
        params, grads, momentum_buffers = [], [], []
        has_sparse_grad = torch_class._init_group(self, group, params, grads, momentum_buffers)
        sgd.sgd(
            params,
            grads,
            momentum_buffers,
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            has_sparse_grad=has_sparse_grad,
            foreach=group["foreach"],
            fused=group["fused"],
            **amp_arguments(self),
        )
        if group["momentum"] != 0:
            for param, buffer in zip(params, momentum_buffers, strict=True):
                self.state[param]["momentum_buffer"] = buffer


class Adagrad(Optimizer):
    """Adagrad (:func:`adamkit.rules.adagrad`); its state is created eagerly, as torch does."""

    spec = specs.ADAGRAD

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
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
                lr_decay=lr_decay,
                eps=eps,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                fused=fused,
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
            step_in_backward=step_in_backward,
            max_grad_norm=max_grad_norm,
        )

    def _step_with_torch(self, group, torch_class):
        """Step ``group`` with torch's own implementation, ``torch.optim.adagrad.adagrad``
        (:mod:`adamkit.torch._torch_step`)."""
        lists = [[] for _ in range(4)]
        has_sparse_grad, has_complex = torch_class._init_group(self, group, *lists)
        adagrad.adagrad(
            *lists,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            lr_decay=group["lr_decay"],
            eps=group["eps"],
            has_sparse_grad=has_sparse_grad,
            foreach=group["foreach"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
            has_complex=has_complex,
            fused=group["fused"],
            **amp_arguments(self),
        )
