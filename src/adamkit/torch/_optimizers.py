"""Drop-in replacements for ``torch.optim``'s Adam family and baselines.

Signatures, defaults, keyword-only markers and ``state_dict`` layout are torch 2.13's, plus
adamkit's keyword-only options. The math of each class is the rule of the same name in
:mod:`adamkit.rules`. Every class takes the keyword-only options ``nonfinite_grads``,
``state_dtype`` (``"fp32"``: float32 state for bfloat16 parameters; Adam, AdamW, Adamax and
Adadelta also take ``"int8"`` and ``"bf16"``) and ``kahan_summation`` (:class:`adamkit.torch.Optimizer`).

``sparse_mode`` (Adam, AdamW, Adamax, Adagrad, Adadelta; also a parameter-group key) is how a
sparse COO gradient, as ``nn.Embedding(sparse=True)`` makes, is stepped: ``"lazy"``, the
default, steps only the rows it holds (weight decay included), ``"dense"`` takes the dense step
on the densified gradient. See :mod:`adamkit.torch._sparse`.

``foreach``, ``fused``, ``capturable`` and ``differentiable`` are torch's: where adamkit's
kernels do not serve, the step is torch.optim's own implementation with the same flags (see
:class:`adamkit.torch.Optimizer`).
"""

import torch
from torch.optim.optimizer import ParamsT

from adamkit import specs
from adamkit.torch._base import Optimizer
from adamkit.validation import check_bool


class Adam(Optimizer):
    """Adam (:func:`adamkit.rules.adam`); ``decoupled_weight_decay=True`` makes it AdamW.

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
        sparse_mode: str = "lazy",
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
    ) -> None:
        _check_tensor_hyperparameters(lr, betas, foreach, capturable)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=_pair(betas),
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
                sparse_mode=sparse_mode,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
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
        sparse_mode: str = "lazy",
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
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
            sparse_mode=sparse_mode,
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
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
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=_pair(betas),
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
    ) -> None:
        check_bool("nesterov", nesterov)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov=True requires momentum > 0 and dampening = 0, "
                f"got momentum={momentum!r}, dampening={dampening!r}"
            )
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
        )


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
        )


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (:func:`adamkit.rules.rmsprop`)."""

    spec = specs.RMSPROP

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        nonfinite_grads: str = "propagate",
        state_dtype: str | None = None,
        kahan_summation: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                alpha=alpha,
                eps=eps,
                centered=centered,
                weight_decay=weight_decay,
                capturable=capturable,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
            ),
            nonfinite_grads=nonfinite_grads,
            state_dtype=state_dtype,
            kahan_summation=kahan_summation,
        )


def _check_tensor_hyperparameters(lr, betas, foreach, capturable):
    """torch's Adam checks of tensor ``lr`` and ``betas``: its foreach implementation takes
    them only with ``capturable=True``, and betas are both floats or both tensors."""
    if torch.is_tensor(lr) and foreach and not capturable:
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
    try:
        are_tensors = [torch.is_tensor(beta) for beta in betas]
    except TypeError:
        return  # not a pair: the spec's check names it
    if len(are_tensors) == 2 and are_tensors[0] != are_tensors[1]:
        raise ValueError("betas must be either both floats or both Tensors")
    for index, is_tensor in enumerate(are_tensors):
        if is_tensor and foreach and not capturable:
            raise ValueError(f"betas[{index}] as a Tensor is not supported for capturable=False and foreach=True")


def _pair(betas):
    """betas as torch stores them: a tuple, a 1-element tensor as a 0-d tensor (so that
    ``differentiable=True`` differentiates through it); the kernels take them as floats."""
    try:
        return tuple(beta.reshape(()) if torch.is_tensor(beta) and beta.numel() == 1 else beta for beta in betas)
    except TypeError:
        return betas
