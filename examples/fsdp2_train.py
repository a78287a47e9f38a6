"""Train with FSDP2 on CPU processes, step with adamkit, save and resume a distributed checkpoint.

Launch on 2 processes of this machine (gloo on loopback):

    torchrun --standalone --nproc_per_node 2 examples/fsdp2_train.py

Each process holds a shard (along dim 0) of every parameter, gradient and optimizer state;
adamkit's fused kernels step the local shards, and its state is DTensors laid out like the
parameters, so ``torch.distributed.checkpoint`` can save it and load it on any number of
processes. ``--offload`` adds FSDP2's ``CPUOffloadPolicy`` (on a GPU machine the step then runs
on the CPU, where adamkit's kernels are fastest). ``--compare`` also times the step of
``torch.optim.AdamW`` (its default and ``fused=True`` paths) on the same sharded model.
"""

import argparse
import gc
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

import adamkit.torch


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1024, help="hidden width of the MLP (default 1024)")
    parser.add_argument("--layers", type=int, default=4, help="hidden layers (default 4)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per phase (default 20)")
    parser.add_argument("--offload", action="store_true", help="use FSDP2's CPUOffloadPolicy")
    parser.add_argument("--compare", action="store_true", help="also time torch.optim.AdamW's step")
    parser.add_argument("--checkpoint", help="checkpoint directory (default: a temporary one)")
    return parser.parse_args()


def build_model(args, mesh):
    torch.manual_seed(0)
    sizes = [32] + [args.width] * args.layers + [10]
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.GELU()]
    model = torch.nn.Sequential(*layers[:-1])
    policy = {"offload_policy": CPUOffloadPolicy(pin_memory=False)} if args.offload else {}
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh, **policy)
    return fully_shard(model, mesh=mesh, **policy)


def train(model, optimizer, steps):
    """Train on this rank's part of a fixed random batch; return the step times in ms and the last loss."""
    generator = torch.Generator().manual_seed(dist.get_rank())
    inputs, targets = torch.randn(64, 32, generator=generator), torch.randint(0, 10, (64,), generator=generator)
    step_ms = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        start = time.perf_counter()
        optimizer.step()
        step_ms.append((time.perf_counter() - start) * 1e3)
    return step_ms, loss.item()


def report(what, step_ms):
    if dist.get_rank() == 0:
        print(f"{what:32s} median optimizer step {statistics.median(step_ms[2:] or step_ms):8.2f} ms")


def main():
    args = parse_arguments()
    dist.init_process_group("gloo")
    run(args, init_device_mesh("cpu", (dist.get_world_size(),)))
    # Free the models, optimizers and DTensors while Python is fully alive: destroyed during
    # interpreter shutdown instead, gloo's threads can abort the process (pytorch/pytorch#179291).
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def run(args, mesh):
    checkpoint = [args.checkpoint or tempfile.mkdtemp(prefix="adamkit-fsdp2-")]
    dist.broadcast_object_list(checkpoint)  # every rank writes into rank 0's directory
    checkpoint = checkpoint[0]

    model = build_model(args, mesh)
    optimizer = adamkit.torch.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    step_ms, loss = train(model, optimizer, args.steps)
    report("adamkit.torch.AdamW", step_ms)
    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
    dcp.save(state, checkpoint_id=checkpoint)

    # Resume: a fresh model and optimizer load the checkpoint (on any number of processes).
    resumed = build_model(args, mesh)
    optimizer = adamkit.torch.AdamW(resumed.parameters(), lr=1e-3, weight_decay=1e-2)
    state = {"model": get_model_state_dict(resumed), "optim": get_optimizer_state_dict(resumed, optimizer)}
    dcp.load(state, checkpoint_id=checkpoint)
    set_model_state_dict(resumed, state["model"])
    set_optimizer_state_dict(resumed, optimizer, state["optim"])
    _, resumed_loss = train(resumed, optimizer, args.steps)
    if dist.get_rank() == 0:
        print(f"loss after {args.steps} steps {loss:.4f}; after resuming from {checkpoint} and {args.steps} more {resumed_loss:.4f}")

    if args.compare:
        for label, options in (("torch.optim.AdamW", {}), ("torch.optim.AdamW fused=True", {"fused": True})):
            model = build_model(args, mesh)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2, **options)
            report(label, train(model, optimizer, args.steps)[0])


if __name__ == "__main__":
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    main()
