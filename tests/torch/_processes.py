"""Running a test's worker on several CPU processes joined in a gloo group on loopback, and
the small model and batch those tests train."""

import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

MULTIPROCESS_MARKS = [
    pytest.mark.distributed,
    # One xdist worker runs all multi-process tests, one after another: two groups of 4
    # processes importing torch at once on a 2-core machine can outlast a rendezvous.
    pytest.mark.xdist_group("processes"),
    pytest.mark.skipif(
        not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is needed"
    ),
]
"""The marks of every test module that runs :func:`spawn`."""

TIMEOUT_SECONDS = 300  # generous, for a loaded CI machine


def leave_group(completed):
    """Leave the group. After ``completed`` work, first wait for every process, then end this
    one at once: torch objects that outlive the group (FSDP2 modules, DTensors, checkpoint
    planners) are otherwise destroyed during interpreter shutdown, where gloo's worker threads
    can abort the process (pytorch/pytorch#179291), which would fail a test whose work and
    results are complete."""
    if completed:
        dist.barrier()
    dist.destroy_process_group()
    if completed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def join_group(rank, world_size, rendezvous):
    """Join the gloo group of ``world_size`` processes meeting at the file ``rendezvous``, one
    thread each. A file, not a TCP port: a port picked as free can be taken by another test's
    processes before the group binds it."""
    torch.set_num_threads(1)
    if os.path.exists("/sys/class/net/lo"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=TIMEOUT_SECONDS),
    )


def _rendezvous_file():
    return os.path.join(tempfile.gettempdir(), f"adamkit-rendezvous-{uuid.uuid4().hex}")


def spawn(worker, world_size, *args):
    """Run ``worker(rank, world_size, rendezvous, *args)`` on ``world_size`` processes; kill them
    if they hang."""
    rendezvous = _rendezvous_file()
    context = mp.start_processes(
        worker, args=(world_size, rendezvous, *args), nprocs=world_size, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not context.join(timeout=1.0):  # raises if a worker raised
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            pytest.fail(f"{worker.__name__} did not finish within {TIMEOUT_SECONDS} s")
    if os.path.exists(rendezvous):
        os.remove(rendezvous)


def tiny_model():
    """A 7-17-3 MLP: its layers' 17 and 3 rows shard unevenly over 2 or 4 processes."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 17), torch.nn.Tanh(), torch.nn.Linear(17, 3))


def tiny_batch(size):
    """``size`` random inputs and regression targets for :func:`tiny_model`, the same on every process."""
    generator = torch.Generator().manual_seed(1)
    return torch.randn(size, 7, generator=generator), torch.randn(size, 3, generator=generator)


def train_rows(model, optimizer, steps, batch, rank=0, world_size=1):
    """``steps`` steps on this rank's rows of :func:`tiny_batch` of ``batch`` rows; returns the
    whole batch's loss at each step."""
    inputs, targets = tiny_batch(batch)
    rows = slice(rank * batch // world_size, (rank + 1) * batch // world_size)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs[rows]), targets[rows])
        loss.backward()
        optimizer.step()
        total = loss.detach().clone()
        if world_size > 1:
            dist.all_reduce(total)
        losses.append(total.item() / world_size)
    return losses
