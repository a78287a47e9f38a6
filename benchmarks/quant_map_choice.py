"""Measure the choice of 8-bit maps for a rule's state (quoted in BENCHMARKS.md).

For each candidate set of maps (one per state, all block-wise with BLOCK elements per scale,
t = c / levels):
  linear      x = s*t (signed, 127 levels; unsigned, 255 levels)
  sqrt        x = s*t|t| (signed), x = s*t^2 (unsigned)
  adamkit     x = s*t|t| (signed), x = s*t^4 (unsigned): the codec's maps
it prints (1) the round-trip error on the state of a real run of the rule: for each state, the
relative error of the quantity the step uses (m; sqrt(v) for second moments; Adamax's u
itself, which the step divides by), its median and 90th percentile, and the share of live
elements that decode to 0; and (2) the final train loss of full-batch training on
scikit-learn's digits (an MLP 64-256-10, float32) when the state goes through
decode -> adamkit.rules.<rule> -> encode at every step, over 3 seeds.

    .venv/bin/python benchmarks/quant_map_choice.py [--rule adam|adamax|adadelta]
"""

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits

from adamkit import rules
from adamkit.compact.int8 import _decode, _encode

SIGNED = {"linear": (127, 1), "sqrt": (127, 2), "adamkit": (127, 2)}
UNSIGNED = {"linear": (255, 1), "sqrt": (255, 2), "adamkit": (255, 4)}
STEPS = 400


def identity(x):
    return x


# Per rule: its function, learning rate, and per state: (signed?, the quantity the step uses,
# which elements are live). Adamax's exp_inf is at least eps: an element that never saw a
# gradient holds eps, and decoding it to 0 changes nothing (the next max gives |g| + eps back).
RULES = {
    "adam": (rules.adam, 3e-3, {"exp_avg": (True, identity, np.nonzero), "exp_avg_sq": (False, np.sqrt, np.nonzero)}),
    "adamax": (
        rules.adamax,
        1e-2,
        {"exp_avg": (True, identity, np.nonzero), "exp_inf": (False, identity, lambda u: u > 2e-8)},
    ),
    "adadelta": (
        rules.adadelta,
        1.0,
        {"square_avg": (False, np.sqrt, np.nonzero), "acc_delta": (False, np.sqrt, np.nonzero)},
    ),
}


def roundtrip(x, map_name, signed):
    levels, power = (SIGNED if signed else UNSIGNED)[map_name]
    return _decode(*_encode(x, levels, power, signed, rows=False), levels, power, signed)


def train(rule_name, map_name, seed):
    rule, lr, keys = RULES[rule_name]
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    params = list(model.parameters())
    states = [{key: np.zeros(p.numel(), np.float32) for key in keys} for p in params]
    for step in range(1, STEPS + 1):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for p, state in zip(params, states):
            new = rule(p.detach().numpy().reshape(-1), p.grad.numpy().reshape(-1), *state.values(), step=step, lr=lr)
            with torch.no_grad():
                p.copy_(torch.from_numpy(new.param.reshape(p.shape)))
            for key, (signed, _, _) in keys.items():
                value = getattr(new, key)
                state[key] = value if map_name is None else roundtrip(value, map_name, signed)
    return loss.item(), states


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rule", choices=sorted(RULES), default="adam")
    rule_name = parser.parse_args().rule
    _, lr, keys = RULES[rule_name]
    _, fp32_states = train(rule_name, None, 0)
    values = {key: np.concatenate([state[key] for state in fp32_states]) for key in keys}
    size = next(iter(values.values())).size
    print(f"round trip on the state of an fp32 {rule_name} run ({size} elements, {STEPS} steps):")
    header = " | ".join(f"{key}: median, p90 rel. err., live decoded as 0" for key in keys)
    print(f"| maps | {header} |")
    print("|---|" + "---|" * len(keys))
    for map_name in SIGNED:
        cells = []
        for key, (signed, used, live) in keys.items():
            picked = live(values[key])
            x, x_hat = values[key][picked], roundtrip(values[key], map_name, signed)[picked]
            error = np.abs(used(np.abs(x_hat)) - used(np.abs(x))) / used(np.abs(x))
            cells.append(f"{np.median(error):.4f}, {np.quantile(error, 0.9):.4f}, {np.mean(x_hat == 0):.2%}")
        print(f"| {map_name} | {' | '.join(cells)} |")
    print()
    print(f"final train loss after {STEPS} full-batch steps, lr {lr:g} (3 seeds):")
    print("| state | seed 0 | seed 1 | seed 2 | mean | vs fp32 |")
    print("|---|---|---|---|---|---|")
    reference = None
    for map_name in (None, *SIGNED):
        losses = [train(rule_name, map_name, seed)[0] for seed in range(3)]
        mean = float(np.mean(losses))
        reference = mean if map_name is None else reference
        cells = " | ".join(f"{loss:.5f}" for loss in losses)
        print(f"| {map_name or 'fp32'} | {cells} | {mean:.5f} | {mean / reference - 1:+.1%} |")


if __name__ == "__main__":
    main()
