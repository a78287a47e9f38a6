"""What summing the whole-tensor sums over the processes costs under FSDP2: LAMB and cautious
AdamW on 2 gloo processes (1 thread each), an MLP of 4 square layers of 1024 (4.2M parameters),
each stepped with the real reducer (one gather of the local sums per kernel call,
``adamkit.torch._shard_sums``) and with one that returns the local sums (no collective: the
wrong step, for the timing only), the two optimizers stepping in alternation, each step between
two barriers; the medians of 12 rounds, in ms.

    .venv/bin/python benchmarks/fsdp_reduce_cost.py
"""

import os
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.torch._processes import join_group, leave_group  # noqa: E402

WIDTH, DEPTH, ROUNDS = 1024, 4, 12


def _optimizers():
    import adamkit.torch

    return {
        "LAMB": lambda params: adamkit.torch.LAMB(params, lr=1e-3),
        "AdamW cautious": lambda params: adamkit.torch.AdamW(params, lr=1e-3, cautious=True),
    }


def _stepped(make, mesh):
    """An optimizer of a sharded MLP with gradients, stepped once (its plan holds the reducer)."""
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH)])
    for layer in model:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optimizer = make(model.parameters())
    model(torch.randn(8, WIDTH)).sum().backward()
    optimizer.step()
    return optimizer


def _worker(rank, world_size, rendezvous):
    join_group(rank, world_size, rendezvous)
    from torch.distributed.device_mesh import init_device_mesh

    from adamkit.torch import _shard_sums

    mesh = init_device_mesh("cpu", (world_size,))
    summed = _shard_sums.reducer
    rows = []
    for name, make in _optimizers().items():
        contenders = {"summed": _stepped(make, mesh)}
        _shard_sums.reducer = lambda params: (lambda sums: sums) if summed(params) else None
        contenders["local"] = _stepped(make, mesh)
        _shard_sums.reducer = summed
        times = {kind: [] for kind in contenders}
        for _ in range(ROUNDS):
            for kind, optimizer in contenders.items():
                dist.barrier()
                start = time.perf_counter()
                optimizer.step()
                dist.barrier()
                times[kind].append(time.perf_counter() - start)
        medians = {kind: 1e3 * statistics.median(values) for kind, values in times.items()}
        rows.append(
            f"| {name} | {medians['summed']:.1f} | {medians['local']:.1f} | {medians['summed'] / medians['local']:.2f} |"
        )
    if rank == 0:
        print("| Optimizer | summed ms | local only ms | ratio |\n|---|---|---|---|\n" + "\n".join(rows), flush=True)
    leave_group(True)


if __name__ == "__main__":
    rendezvous = os.path.join(tempfile.gettempdir(), f"adamkit-reduce-cost-{os.getpid()}")
    mp.start_processes(_worker, args=(2, rendezvous), nprocs=2, start_method="spawn")
