"""``adamkit bench --sparse``: the lazy sparse Adam step on a large embedding table.

A ``rows × dim`` fp32 table (1,000,000 × 64 by default) of which each step's gradient touches
``fraction`` of the rows (1 %: 10,000). Two gradients are timed, a row of the report each:

- **coalesced**: each touched row once, in row order, as ``grad.coalesce()`` leaves it;
- **embedding backward**: ``lookups_per_row`` lookups per touched row (20,000), drawn from the
  touched rows (each at least once), through ``nn.functional.embedding(..., sparse=True)``'s
  backward: uncoalesced, in lookup order, with repeated rows.

Every step takes a fresh gradient on fresh rows (one per round, the same for every
contender), so no step finds its rows in the cache where the step before left them. The
contenders, each with its own copy of the table, alternate step by step:

- ``adamkit lazy Adam``: ``adamkit.torch.Adam``, whose sparse step is lazy by default, with
  ``eps_hat=True`` so that it computes what ``SparseAdam`` computes (at the same cost);
- ``adamkit dense-mode Adam``: ``sparse_mode="dense"``, the dense step on the densified gradient;
- ``adamkit dense Adam`` and ``torch fused Adam`` (``torch.optim.Adam(fused=True)``): a dense
  step of the whole table, on a dense gradient;
- ``torch SparseAdam``: ``torch.optim.SparseAdam``.

The sparse contenders' time includes setting ``param.grad`` to the round's gradient.
"""

import gc
import os

import torch

import adamkit.torch
from adamkit.benchmarking.runner import apply_threads, finish_record, start_record
from adamkit.benchmarking.schedule import Contender, time_round_robin
from adamkit.benchmarking.stats import timing_entry

SEED = 0
LAZY = "adamkit lazy Adam"
DENSE_MODE = "adamkit dense-mode Adam"
ADAMKIT_DENSE = "adamkit dense Adam"
TORCH_FUSED = "torch fused Adam"
SPARSE_ADAM = "torch SparseAdam"
LABELS = (LAZY, DENSE_MODE, ADAMKIT_DENSE, TORCH_FUSED, SPARSE_ADAM)
# The ratios reported: (name, the slower contender, the faster one).
RATIOS = (
    ("adamkit dense / lazy", ADAMKIT_DENSE, LAZY),
    ("torch fused / lazy", TORCH_FUSED, LAZY),
    ("SparseAdam / lazy", SPARSE_ADAM, LAZY),
    ("dense-mode / lazy", DENSE_MODE, LAZY),
)
# The targets: lazy Adam ≥ 20× a dense Adam step, and at least as fast as SparseAdam.
TARGETS = {"adamkit dense / lazy": 20.0, "SparseAdam / lazy": 1.0}
GRADIENTS = {
    "coalesced": "each touched row once, in row order",
    "embedding backward": "uncoalesced lookups with repeats, from F.embedding(sparse=True)",
}


def run_sparse_benchmark(settings, *, progress=None):
    """Time every contender on both gradients; return the JSON-ready record."""
    report = progress or (lambda message: None)
    threads = apply_threads(settings.threads)
    record = start_record(
        settings,
        {
            "rows": settings.rows,
            "dim": settings.dim,
            "fraction": settings.fraction,
            "touched_rows": settings.touched,
            "lookups_per_row": settings.lookups_per_row,
            "steps": settings.steps,
            "warmup": settings.warmup,
            "quick": settings.quick,
            "threads": threads,
            "seed": SEED,
        },
    )
    generator = torch.Generator().manual_seed(SEED)
    table = torch.randn(settings.rows, settings.dim, generator=generator)
    for gradient, description in GRADIENTS.items():
        report(f"timing {gradient} gradients ({description})")
        rounds = settings.warmup + settings.steps
        grads = [_gradient(gradient, settings, generator) for _ in range(rounds)]
        entrants = _contenders(table, grads)
        timings = time_round_robin(entrants, warmup=settings.warmup, steps=settings.steps)
        check = _check_work(entrants, table)
        del entrants
        gc.collect()
        record["results"].append(_summarize_row(gradient, description, grads, timings, check))
    return finish_record(record)


def _gradient(kind, settings, generator):
    """One step's sparse gradient of the table, on freshly drawn rows."""
    rows = torch.randperm(settings.rows, generator=generator)[: settings.touched]
    if kind == "coalesced":
        rows = rows.sort().values
        values = torch.randn(len(rows), settings.dim, generator=generator)
        shape = (settings.rows, settings.dim)
        return torch.sparse_coo_tensor(rows[None], values, shape, is_coalesced=True, check_invariants=False)
    extra = rows[torch.randint(len(rows), ((settings.lookups_per_row - 1) * len(rows),), generator=generator)]
    lookups = torch.cat([rows, extra])
    lookups = lookups[torch.randperm(len(lookups), generator=generator)]
    # The backward of an embedding lookup; an empty weight is never read beyond the looked-up rows.
    weight = torch.empty(settings.rows, settings.dim, requires_grad=True)
    upstream = torch.randn(len(lookups), settings.dim, generator=generator)
    (torch.nn.functional.embedding(lookups, weight, sparse=True) * upstream).sum().backward()
    return weight.grad


def _contenders(table, grads):
    """The five contenders, each on its own copy of ``table``; sparse ones step ``grads`` in turn."""
    dense_grad = grads[0].to_dense()
    return [
        _sparse_contender(LAZY, lambda params: adamkit.torch.Adam(params, eps_hat=True), table, grads),
        _sparse_contender(DENSE_MODE, lambda params: adamkit.torch.Adam(params, sparse_mode="dense"), table, grads),
        _dense_contender(ADAMKIT_DENSE, adamkit.torch.Adam, {}, table, dense_grad),
        _dense_contender(TORCH_FUSED, torch.optim.Adam, {"fused": True}, table, dense_grad),
        _sparse_contender(SPARSE_ADAM, torch.optim.SparseAdam, table, grads),
    ]


def _sparse_contender(label, make_optimizer, table, grads):
    param = torch.nn.Parameter(table.clone())
    optimizer = make_optimizer([param])
    upcoming = iter(grads)

    def step():
        param.grad = next(upcoming)
        optimizer.step()

    return Contender(label, step, params=[param])


def _dense_contender(label, optimizer_class, flags, table, dense_grad):
    param = torch.nn.Parameter(table.clone())
    param.grad = dense_grad
    optimizer = optimizer_class([param], **flags)
    return Contender(label, optimizer.step, params=[param])


def _check_work(contenders, table):
    """That lazy Adam did the work timed: the rows it changed, and ``max |a − b| / max |b|``
    between its table and SparseAdam's (the same steps, with ``eps_hat``: float32 round-off)."""
    by_label = {contender.label: contender.params[0].detach() for contender in contenders}
    ours, theirs = by_label[LAZY], by_label[SPARSE_ADAM]
    return {
        "lazy_rows_changed": int((ours != table).any(dim=1).sum()),
        "lazy_vs_sparse_adam_max_relative_difference": float((ours - theirs).abs().max() / theirs.abs().max()),
    }


def _summarize_row(gradient, description, grads, timings, check):
    entries = {label: timing_entry(samples) for label, samples in timings.samples.items()}
    ratios = {name: entries[slow]["median_ms"] / entries[fast]["median_ms"] for name, slow, fast in RATIOS}
    return {
        "gradient": gradient,
        "description": description,
        "entries_per_step": grads[0]._nnz(),
        "coalesced": grads[0].is_coalesced(),
        "contenders": entries,
        "ratios": ratios,
        "targets_met": {name: ratios[name] >= target for name, target in TARGETS.items()},
        **check,
        "load_average_after": list(os.getloadavg()),
    }
