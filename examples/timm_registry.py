"""Register adamkit's optimizers in timm's optimizer registry, and create them by name.

    pip install "adamkit[torch,integrations]" timm
    python examples/timm_registry.py

(timm imports torchvision; if yours cannot load, see examples/torchvision_stand_in.)

After the registration, ``create_optimizer_v2(model, "adamkit-adamw", ...)`` (and timm's
``train.py --opt adamkit-adamw``, if you register in a script that runs before it) build
``adamkit.torch.AdamW`` with timm's parameter groups: weight decay on the weights, none on
biases and norm parameters. It runs on the CPU in seconds: a small MLP classifies synthetic data.

**Do not put ``_`` in the names.** timm splits a name at ``_`` and looks up only the last piece;
a first piece ``lookahead`` wraps the optimizer in timm's Lookahead. So ``"adamkit_adamw"`` would
silently give timm's own ``adamw`` (torch.optim.AdamW). Hence the names ``adamkit-adam``,
``adamkit-adamw`` and ``adamkit-adamax``, and ``lookahead_adamkit-adamw`` works as timm means.
"""

import torch
from timm.optim import OptimInfo, create_optimizer_v2
from timm.optim._optim_factory import default_registry  # the registry create_optimizer_v2 reads

import adamkit.torch

ADAMKIT_OPTIMIZERS = {
    "adamkit-adam": adamkit.torch.Adam,
    "adamkit-adamw": adamkit.torch.AdamW,
    "adamkit-adamax": adamkit.torch.Adamax,
}

STEPS = 60


def register_adamkit():
    for name, optimizer_class in ADAMKIT_OPTIMIZERS.items():
        # has_betas lets timm pass `betas` through; has_eps, `eps` (timm drops what is not declared).
        default_registry.register(
            OptimInfo(name=name, opt_class=optimizer_class, description=f"{optimizer_class.__qualname__} from adamkit",
                      has_eps=True, has_betas=True)
        )


def classification_data(count, seed):
    """Points in 16 dimensions, labelled by which of 4 fixed directions they point most along."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(16, 4, generator=torch.Generator().manual_seed(123))
    inputs = torch.randn(count, 16, generator=generator)
    return inputs, (inputs @ directions).argmax(dim=1)


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 64), torch.nn.LayerNorm(64), torch.nn.GELU(), torch.nn.Linear(64, 4)
    )


def train(model, optimizer, inputs, labels):
    for step in range(STEPS):
        batch = slice(step * 32 % len(inputs), step * 32 % len(inputs) + 32)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
        optimizer.step()


def held_out_loss(model, inputs, labels):
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(inputs), labels).item()


def class_name(optimizer):
    return f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"


def main():
    """Train with the registered AdamW, and say what happened; show the two name rules too."""
    register_adamkit()
    model = small_model()
    optimizer = create_optimizer_v2(model, "adamkit-adamw", lr=5e-3, weight_decay=0.05, betas=(0.9, 0.98), eps=1e-7)
    inputs, labels = classification_data(640, seed=0)
    held_out = classification_data(256, seed=1)
    loss_before = held_out_loss(model, *held_out)
    train(model, optimizer, inputs, labels)
    with_lookahead = create_optimizer_v2(small_model(), "lookahead_adamkit-adamw", lr=5e-3)
    return {
        "loss_before": loss_before,
        "loss_after": held_out_loss(model, *held_out),
        "optimizer": class_name(optimizer),
        "weight_decay_per_group": [group["weight_decay"] for group in optimizer.param_groups],
        "steps_taken": [int(state["step"]) for state in optimizer.state.values()],
        "global_step": STEPS,
        "registered": sorted(default_registry.list_optimizers("adamkit*")),
        "lookahead_wraps": class_name(with_lookahead._base_optimizer),
        "underscore_name_gives": class_name(create_optimizer_v2(small_model(), "adamkit_adamw")),
    }


if __name__ == "__main__":
    for fact, value in main().items():
        print(f"{fact}: {value}")
