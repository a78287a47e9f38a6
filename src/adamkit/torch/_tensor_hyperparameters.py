"""torch's handling of tensor hyperparameters in Adam and AdamW: the checks its implementations
make of ``lr`` and ``betas``, and ``betas`` as torch stores them in a parameter group."""

import torch


def check_tensor_lr(lr):
    """torch's check of a tensor ``lr`` in NAdam's, Adafactor's and SparseAdam's constructors,
    with its message."""
    if torch.is_tensor(lr) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")


def check_tensor_hyperparameters(lr, betas, foreach, capturable):
    """torch's Adam checks of tensor ``lr`` and ``betas``: its foreach implementation takes
    them only with ``capturable=True``, and betas are both floats or both tensors (so ``betas=(0, 0.9)``
    is refused, as torch refuses it)."""
    if torch.is_tensor(lr) and foreach and not capturable:
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
    try:
        are_tensors = [torch.is_tensor(beta) for beta in betas]
    except TypeError:
        return  # not a pair: the spec's check names it
    both_floats = all(isinstance(beta, float) for beta in betas)
    if len(are_tensors) == 2 and are_tensors[0] != are_tensors[1] or not any(are_tensors) and not both_floats:
        raise ValueError(f"betas must be either both floats or both Tensors, got {betas!r}")
    for index, is_tensor in enumerate(are_tensors):
        if is_tensor and foreach and not capturable:
            raise ValueError(f"betas[{index}] as a Tensor is not supported for capturable=False and foreach=True")


def stored_betas(betas):
    """betas as torch stores them: a tuple, a 1-element tensor as a 0-d tensor (so that
    ``differentiable=True`` differentiates through it); the kernels take them as floats."""
    try:
        return tuple(beta.reshape(()) if torch.is_tensor(beta) and beta.numel() == 1 else beta for beta in betas)
    except TypeError:
        return betas
