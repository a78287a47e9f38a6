"""The configurations ``adamkit bench --train`` compares: a model dtype and an AdamW.

Every configuration trains the same GPT from the same initial weights (made in float32, then
converted with ``.to(getattr(torch, model_dtype))``) with the same hyperparameters, ``HYPERPARAMETERS``:

- ``torch-fp32-fused``: ``torch.optim.AdamW(fused=True)`` on the float32 model;
- ``torch-bf16``: ``torch.optim.AdamW(fused=True)`` on the bfloat16 model (bfloat16 state,
  rounded to nearest);
- ``adamkit-fp32``: ``adamkit.torch.AdamW`` with its defaults on the float32 model;
- ``adamkit-smallest``: adamkit's smallest recipe on the bfloat16 model: 8-bit state
  (``state_dtype="int8"``), each parameter stepped during backward and its gradient freed
  (``step_in_backward=True``) and Kahan-compensated bfloat16 parameters
  (``kahan_summation=True``);
- ``torchao-bf16-sr``: torchao's AdamW with bfloat16 stochastic rounding
  (``torchao.optim._AdamW(bf16_stochastic_round=True)``) on the bfloat16 model, only when
  torchao is installed.

Not run unless named in ``--configs``: ``adamkit-smallest-no-sib``, the smallest recipe without
``step_in_backward`` (its gradients all exist after backward), to compare with the recipe.
"""

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

HYPERPARAMETERS = {"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}


@dataclass(frozen=True)
class TrainConfig:
    """A model dtype and the optimizer built on the model's parameters; ``package`` must import
    for it to run, and ``by_default`` says whether a run without ``--configs`` includes it."""

    name: str
    description: str
    model_dtype: str
    make_optimizer: Callable[[list], object]
    package: str | None = None
    by_default: bool = True

    def missing(self):
        """Why this configuration cannot run here (its package is not installed), or ``None``."""
        if self.package is not None and importlib.util.find_spec(self.package) is None:
            return f"{self.package} is not installed"
        return None


def _torch_adamw(params):
    import torch

    return torch.optim.AdamW(params, fused=True, **HYPERPARAMETERS)


def _adamkit_adamw(**options):
    def make(params):
        import adamkit.torch

        return adamkit.torch.AdamW(params, **HYPERPARAMETERS, **options)

    return make


def _torchao_adamw(params):
    return importlib.import_module("torchao.optim")._AdamW(params, bf16_stochastic_round=True, **HYPERPARAMETERS)


SMALLEST = {"state_dtype": "int8", "kahan_summation": True}
CONFIGS = (
    TrainConfig("torch-fp32-fused", "torch.optim.AdamW(fused=True), fp32 model", "float32", _torch_adamw),
    TrainConfig("torch-bf16", "torch.optim.AdamW(fused=True), bf16 model", "bfloat16", _torch_adamw),
    TrainConfig("adamkit-fp32", "adamkit.torch.AdamW, fp32 model", "float32", _adamkit_adamw()),
    TrainConfig(
        "adamkit-smallest",
        'adamkit.torch.AdamW(state_dtype="int8", step_in_backward=True, kahan_summation=True), bf16 model',
        "bfloat16",
        _adamkit_adamw(**SMALLEST, step_in_backward=True),
    ),
    TrainConfig(
        "torchao-bf16-sr",
        "torchao.optim._AdamW(bf16_stochastic_round=True), bf16 model",
        "bfloat16",
        _torchao_adamw,
        package="torchao",
    ),
    TrainConfig(
        "adamkit-smallest-no-sib",
        'adamkit.torch.AdamW(state_dtype="int8", kahan_summation=True), bf16 model (no step_in_backward)',
        "bfloat16",
        _adamkit_adamw(**SMALLEST),
        by_default=False,
    ),
)
BY_NAME = {config.name: config for config in CONFIGS}
NAMES = tuple(BY_NAME)
DEFAULT_NAMES = tuple(config.name for config in CONFIGS if config.by_default)
