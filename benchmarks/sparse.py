"""Time the lazy sparse Adam step on a large embedding table.

A 1,000,000 x 64 float32 table; each step touches 1 % of its rows (10,000 row indices drawn
uniformly, duplicates coalesced as the optimizers do). Three steps on the same gradient:

* adamkit ``Adam`` with ``sparse_mode="lazy"`` (the C kernel, cost proportional to touched rows);
* adamkit ``Adam`` on the same table with the gradient densified: a dense step;
* ``torch.optim.SparseAdam``.

The contenders run alternately, one step each per round, and the medians over the rounds are
reported with the ratios. Usage: ``python benchmarks/sparse.py [--rows N] [--dim D]
[--fraction F] [--rounds R]``.
"""

import argparse
import statistics
import time

import torch

from adamkit.torch import Adam


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=15)
    return parser.parse_args()


def _sparse_grad(rows, dim, touched, generator):
    indices = torch.randint(0, rows, (1, touched), generator=generator)
    values = torch.randn(touched, dim, generator=generator)
    return torch.sparse_coo_tensor(indices, values, (rows, dim), check_invariants=True)


def main():
    args = _arguments()
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(args.rows, args.dim, generator=generator)
    lazy_param = table.clone().requires_grad_()
    dense_param = table.clone().requires_grad_()
    sparse_adam_param = table.clone().requires_grad_()
    del table
    contenders = {
        "adamkit lazy Adam": (lazy_param, Adam([{"params": [lazy_param], "sparse_mode": "lazy"}])),
        "adamkit dense Adam": (dense_param, Adam([dense_param])),
        "torch SparseAdam": (sparse_adam_param, torch.optim.SparseAdam([sparse_adam_param])),
    }
    touched = max(1, round(args.rows * args.fraction))
    times = {name: [] for name in contenders}
    for round_index in range(args.rounds + 1):  # round 0 warms up (state allocation)
        grad = _sparse_grad(args.rows, args.dim, touched, generator)
        dense_grad = grad.to_dense()
        for name, (param, optimizer) in contenders.items():
            param.grad = dense_grad if name == "adamkit dense Adam" else grad
            start = time.perf_counter()
            optimizer.step()
            elapsed = time.perf_counter() - start
            if round_index:
                times[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.rows:,} x {args.dim} float32 table, {touched:,} row indices per step "
        f"({args.fraction:.2%}), medians of {args.rounds} alternating steps, "
        f"{torch.get_num_threads()} torch threads"
    )
    for name, median in medians.items():
        print(f"  {name:<20} {median * 1e3:9.3f} ms")
    lazy = medians["adamkit lazy Adam"]
    print(f"  dense Adam / lazy Adam  = {medians['adamkit dense Adam'] / lazy:8.1f}x")
    print(f"  SparseAdam / lazy Adam  = {medians['torch SparseAdam'] / lazy:8.1f}x")


if __name__ == "__main__":
    main()
