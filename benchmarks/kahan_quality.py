"""Final train loss of bfloat16 training with and without Kahan summation, against float32.

The `adamkit compare` MLP task (scikit-learn's digits, 64-1000-1000-10 ReLU with dropout 0.5,
minibatches of 128, the same weights, dropout masks and minibatches for every run of a seed),
trained with adamkit.torch.AdamW (weight decay 1e-2) three ways:

- fp32: float32 model, float32 optimizer state;
- bf16 + Kahan: the whole model in bfloat16 (forward, backward, parameters and optimizer state),
  no float32 copy of the weights, `kahan_summation` at its default (on for bfloat16);
- bf16 plain: the same with `kahan_summation=False`.

The final train loss is evaluated the same way for all three: on the whole train set, dropout
off, in float32 from the trained weights (bfloat16 weights upcast exactly). The gap is relative
to fp32 of the same seed (positive: higher loss); "mean gap" is that of the mean losses.

    .venv/bin/python benchmarks/kahan_quality.py [--lr 3e-3 1e-3 3e-4 1e-4] [--epochs 8] [--seeds 3]
"""

import argparse
import statistics

import torch

import adamkit.torch
from adamkit.cli.models import build, objective
from adamkit.cli.tasks import digits_split, minibatches

VARIANTS = {
    "fp32": (torch.float32, None),
    "bf16 + Kahan": (torch.bfloat16, None),
    "bf16 plain": (torch.bfloat16, False),
}


def final_train_loss(seed, dtype, kahan_summation, lr, epochs):
    split = digits_split(seed)
    model = build("mlp", split.features, split.classes, seed).to(dtype)
    optimizer = adamkit.torch.AdamW(model.parameters(), lr=lr, weight_decay=1e-2, kahan_summation=kahan_summation)
    inputs, labels = torch.from_numpy(split.train_inputs), torch.from_numpy(split.train_labels)
    model_inputs = inputs.to(dtype)
    for epoch in range(epochs):
        for batch in minibatches(len(labels), seed, epoch):
            index = torch.from_numpy(batch)
            optimizer.zero_grad()
            objective(model, model_inputs[index], labels[index]).backward()
            optimizer.step()
    evaluated = build("mlp", split.features, split.classes, seed)
    evaluated.load_state_dict({key: value.float() for key, value in model.state_dict().items()})
    evaluated.eval()
    with torch.no_grad():
        return objective(evaluated, inputs, labels).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4, 1e-4])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"digits MLP, AdamW, {args.epochs} epochs, seeds 0-{args.seeds - 1}: final train loss (gap to fp32)")
    print("| lr | variant | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | mean | mean gap | largest gap |")
    print("|---|---|" + "---|" * (args.seeds + 3))
    for lr in args.lr:
        losses = {
            name: [final_train_loss(seed, dtype, kahan, lr, args.epochs) for seed in range(args.seeds)]
            for name, (dtype, kahan) in VARIANTS.items()
        }
        base = losses["fp32"]
        for name, values in losses.items():
            gaps = [value / reference - 1 for value, reference in zip(values, base)]
            cells = [f"{value:.4f}" + ("" if name == "fp32" else f" ({gap:+.2%})") for value, gap in zip(values, gaps)]
            mean_gap = statistics.mean(values) / statistics.mean(base) - 1
            largest = max(gaps, key=abs)
            tail = "— | —" if name == "fp32" else f"{mean_gap:+.2%} | {largest:+.2%}"
            print(f"| {lr:g} | {name} | " + " | ".join(cells) + f" | {statistics.mean(values):.4f} | {tail} |", flush=True)


if __name__ == "__main__":
    main()
