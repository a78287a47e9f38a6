"""Final train loss of an adamkit.torch optimizer (--optimizer: AdamW, Adamax or Adadelta) with
fp32 state vs state_dtype="int8" and "bf16", 3 seeds.

Two tasks: an MLP 64-512-512-10 on scikit-learn's digits (full batch), and a small
character-level GRU language model on the text of Python's own `this` module docstrings and
`__doc__` strings of the standard library (text that ships with Python). Every 2-d weight
of at least 4096 elements gets 8-bit (or bf16) state; biases and small tensors stay fp32.
The last column is relative to fp32 (negative: lower loss).
The char_lm figure is the mean loss of the last 20 minibatches.

    .venv/bin/python benchmarks/quant_quality.py [--optimizer AdamW|Adamax|Adadelta]
"""

import argparse
import statistics

import torch
from sklearn.datasets import load_digits

import adamkit.torch as akt


# The learning rate of each optimizer on each task.
LEARNING_RATES = {"AdamW": (1e-3, 3e-3), "Adamax": (2e-3, 5e-3), "Adadelta": (1.0, 1.0)}


def digits_mlp(optimizer, state_dtype, seed, steps=300):
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    opt = getattr(akt, optimizer)(model.parameters(), lr=LEARNING_RATES[optimizer][0], state_dtype=state_dtype)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return loss.item()


def corpus():
    import collections
    import json
    import os
    import textwrap

    docs = [textwrap.dedent(m.__doc__ or "") for m in (collections, json, os, textwrap, statistics, torch.nn.Module)]
    return "\n".join(docs)


def char_lm(optimizer, state_dtype, seed, steps=150, context=64, batch=32):
    text = corpus()
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    torch.manual_seed(seed)
    vocab = len(chars)
    embed = torch.nn.Embedding(vocab, 64)
    rnn = torch.nn.GRU(64, 128, batch_first=True)
    head = torch.nn.Linear(128, vocab)
    params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
    opt = getattr(akt, optimizer)(params, lr=LEARNING_RATES[optimizer][1], state_dtype=state_dtype)
    generator = torch.Generator().manual_seed(1000 + seed)
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, ids.numel() - context - 1, (batch,), generator=generator)
        window = torch.stack([ids[s : s + context + 1] for s in starts])
        out, _ = rnn(embed(window[:, :-1]))
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, vocab), window[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return statistics.mean(losses[-20:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--optimizer", choices=sorted(LEARNING_RATES), default="AdamW")
    optimizer = parser.parse_args().optimizer
    torch.set_num_threads(1)
    print(f"{optimizer}, learning rates {LEARNING_RATES[optimizer]}")
    print("| task | state | seed 0 | seed 1 | seed 2 | mean | vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for task in (digits_mlp, char_lm):
        reference = None
        for state_dtype in (None, "int8", "bf16"):
            losses = [task(optimizer, state_dtype, seed) for seed in range(3)]
            mean = statistics.mean(losses)
            reference = mean if state_dtype is None else reference
            cells = " | ".join(f"{loss:.5f}" for loss in losses)
            print(f"| {task.__name__} | {state_dtype or 'fp32'} | {cells} | {mean:.5f} | {mean / reference - 1:+.2%} |")


if __name__ == "__main__":
    main()
