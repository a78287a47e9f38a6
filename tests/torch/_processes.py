"""Running a test's worker on several CPU processes joined in a gloo group on loopback, and
the small model and batch those tests train."""

import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

TIMEOUT_SECONDS = 180  # generous for a loaded CI machine; an unloaded one needs ~10 s


def join_group(rank, world_size, port):
    """Join the gloo group of ``world_size`` processes on 127.0.0.1:``port``, one thread each."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if os.path.exists("/sys/class/net/lo"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group(
        "gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=TIMEOUT_SECONDS // 2)
    )


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(worker, world_size, *args):
    """Run ``worker(rank, world_size, port, *args)`` on ``world_size`` processes; kill them if they hang."""
    context = mp.start_processes(
        worker, args=(world_size, free_port(), *args), nprocs=world_size, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not context.join(timeout=1.0):  # raises if a worker raised
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            pytest.fail(f"{worker.__name__} did not finish within {TIMEOUT_SECONDS} s")


def tiny_model():
    """A 7-17-3 MLP: its layers' 17 and 3 rows shard unevenly over 2 or 4 processes."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 17), torch.nn.Tanh(), torch.nn.Linear(17, 3))


def tiny_batch(size):
    """``size`` random inputs and regression targets for :func:`tiny_model`, the same on every process."""
    generator = torch.Generator().manual_seed(1)
    return torch.randn(size, 7, generator=generator), torch.randn(size, 3, generator=generator)
