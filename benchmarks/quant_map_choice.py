"""Measure the choice of 8-bit maps for Adam's state (quoted in src/adamkit/quant/blockwise.py).

For three pairs of maps (exp_avg, exp_avg_sq), all block-wise with BLOCK elements per scale:
  linear      x = s*c/127,            v = s*c/255
  sqrt        x = s*t|t|, t=c/127,    v = s*t^2, t=c/255   ("linear on sqrt(v)")
  adamkit     x = s*t|t|, t=c/127,    v = s*t^4, t=c/255   (the codec's maps)
it prints (1) the round-trip error on the state of a real Adam run (median relative error of
sqrt(v) and of m, the share of non-zero v that decodes to 0) and (2) the final train loss of
full-batch Adam on scikit-learn's digits (an MLP 64-256-10, float32) when the state goes
through decode -> adamkit.rules.adam -> encode at every step, over 3 seeds.

    .venv/bin/python benchmarks/quant_map_choice.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits

from adamkit import rules
from adamkit.quant.blockwise import _decode, _encode

MAPS = {
    "linear": ((127, 1), (255, 1)),
    "sqrt": ((127, 2), (255, 2)),
    "adamkit": ((127, 2), (255, 4)),
}
STEPS = 400


def roundtrip(x, levels, power, signed):
    return _decode(*_encode(x, levels, power, signed), levels, power, signed)


def train(map_name, seed, collect=False):
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    params = list(model.parameters())
    state = [(np.zeros(p.numel(), np.float32), np.zeros(p.numel(), np.float32)) for p in params]
    for step in range(1, STEPS + 1):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for i, p in enumerate(params):
            m, v = state[i]
            new = rules.adam(p.detach().numpy().reshape(-1), p.grad.numpy().reshape(-1), m, v, step=step, lr=3e-3)
            with torch.no_grad():
                p.copy_(torch.from_numpy(new.param.reshape(p.shape)))
            if map_name is None:
                state[i] = (new.exp_avg, new.exp_avg_sq)
            else:
                (ml, mp), (vl, vp) = MAPS[map_name]
                state[i] = (roundtrip(new.exp_avg, ml, mp, True), roundtrip(new.exp_avg_sq, vl, vp, False))
    return loss.item(), state


def main():
    _, fp32_state = train(None, 0)
    m = np.concatenate([s[0] for s in fp32_state])
    v = np.concatenate([s[1] for s in fp32_state])
    print(f"round trip on the state of an fp32 Adam run ({m.size} elements, {STEPS} steps):")
    print("| maps | median rel. err. of m | median rel. err. of sqrt(v) | v>0 decoded as 0 |")
    print("|---|---|---|---|")
    for name, ((ml, mp), (vl, vp)) in MAPS.items():
        m_hat = roundtrip(m, ml, mp, True)
        v_hat = roundtrip(v, vl, vp, False)
        nz = v > 0
        rel_m = np.median(np.abs(m_hat - m)[m != 0] / np.abs(m[m != 0]))
        rel_v = np.median(np.abs(np.sqrt(v_hat[nz]) - np.sqrt(v[nz])) / np.sqrt(v[nz]))
        lost = np.mean(v_hat[nz] == 0)
        print(f"| {name} | {rel_m:.4f} | {rel_v:.4f} | {lost:.2%} |")
    print()
    print(f"final train loss after {STEPS} full-batch steps, lr 3e-3 (3 seeds):")
    print("| state | seed 0 | seed 1 | seed 2 | mean | vs fp32 |")
    print("|---|---|---|---|---|---|")
    reference = None
    for name in (None, *MAPS):
        losses = [train(name, seed)[0] for seed in range(3)]
        mean = float(np.mean(losses))
        reference = mean if name is None else reference
        cells = " | ".join(f"{loss:.5f}" for loss in losses)
        print(f"| {name or 'fp32'} | {cells} | {mean:.5f} | {mean / reference - 1:+.1%} |")


if __name__ == "__main__":
    main()
