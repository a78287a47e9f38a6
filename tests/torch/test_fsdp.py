"""adamkit.torch under FSDP2 (``fully_shard``) on 2 and 4 CPU processes (gloo on loopback).

Parameters, gradients and state are DTensors sharded on dim 0, unevenly (17 and 3 rows over 2
or 4 ranks: one rank of 4 holds no row of the last layer). Every optimizer trains for 20 steps,
each rank on its part of the batch, and must match the same optimizer in one process on the
whole batch, in parameters and losses. Distributed checkpoints saved on 2 processes resume on
2 processes and on 1, and CPU offload (``CPUOffloadPolicy``) trains the same way.
"""

import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

import adamkit.torch
from tests.torch._compare import RICH, Agreement
from tests.torch._processes import TIMEOUT_SECONDS, join_group, spawn, tiny_batch, tiny_model

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(
        not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is needed"
    ),
]

BATCH = 16
STEPS = 20
RTOL = 1e-5
LEGS = {name: (name, RICH[name]) for name in RICH} | {"Adam-reference": ("Adam", {**RICH["Adam"], "fused": False})}
CHECKPOINTED = ("Adam", "AdamW", "SGD")


# --- what every process runs -------------------------------------------------------------------


def _optimizer(leg, params):
    name, hyper = LEGS[leg]
    return getattr(adamkit.torch, name)(params, **hyper)


def _train(model, optimizer, steps, rank=0, world_size=1):
    """``steps`` steps on this rank's rows; returns the whole batch's loss at each step."""
    inputs, targets = tiny_batch(BATCH)
    rows = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
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


def _sharded_model(world_size, offload=False):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

    mesh = init_device_mesh("cpu", (world_size,))
    policy = {"offload_policy": CPUOffloadPolicy(pin_memory=False)} if offload else {}
    model = tiny_model()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh, **policy)
    fully_shard(model, mesh=mesh, **policy)
    return model


def _full(model):
    return [p.full_tensor().detach().clone() for p in model.parameters()]


def _state_layout(model, optimizer):
    """For each parameter and state key: (is a DTensor, its placements equal the parameter's)."""
    from torch.distributed.tensor import DTensor

    layout = []
    for param in model.parameters():
        for key, value in optimizer.state[param].items():
            if key != "step":
                layout.append((key, isinstance(value, DTensor), getattr(value, "placements", None) == param.placements))
    return layout


def _int8_refusal(world_size):
    """8-bit state is not sharded yet: the step raises and changes nothing."""
    model = _sharded_model(world_size)
    optimizer = adamkit.torch.AdamW(model.parameters(), lr=1e-2, state_dtype="int8")
    before = _full(model)
    try:
        _train(model, optimizer, 1, dist.get_rank(), world_size)
    except TypeError as error:
        return {"message": str(error), "unchanged": all(map(torch.equal, before, _full(model)))}
    return {"message": None, "unchanged": False}


def _training_worker(rank, world_size, port, out_dir):
    join_group(rank, world_size, port)
    try:
        results = {}
        for leg in LEGS:
            model = _sharded_model(world_size)
            optimizer = _optimizer(leg, model.parameters())
            losses = _train(model, optimizer, STEPS, rank, world_size)
            results[leg] = {"losses": losses, "params": _full(model), "layout": _state_layout(model, optimizer)}
        model = _sharded_model(world_size, offload=True)
        optimizer = _optimizer("AdamW", model.parameters())
        losses = _train(model, optimizer, STEPS, rank, world_size)
        results["AdamW-offload"] = {"losses": losses, "params": _full(model), "layout": []}
        results["int8"] = _int8_refusal(world_size)
        if rank == 0:
            torch.save(results, os.path.join(out_dir, "results.pt"))
    finally:
        dist.destroy_process_group()


def _checkpoint_worker(rank, world_size, port, out_dir, leg, resume):
    """Train half the steps and save a distributed checkpoint, or (``resume``) load it and train on."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    join_group(rank, world_size, port)
    try:
        model = _sharded_model(world_size)
        optimizer = _optimizer(leg, model.parameters())
        checkpoint = os.path.join(out_dir, f"checkpoint-{leg}")
        if not resume:
            _train(model, optimizer, STEPS // 2, rank, world_size)
            state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
            dcp.save(state, checkpoint_id=checkpoint)
            return
        state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        dcp.load(state, checkpoint_id=checkpoint)
        set_model_state_dict(model, state["model"])
        set_optimizer_state_dict(model, optimizer, state["optim"])
        losses = _train(model, optimizer, STEPS - STEPS // 2, rank, world_size)
        params = _full(model)  # a collective: every rank takes part
        if rank == 0:
            torch.save({"losses": losses, "params": params}, os.path.join(out_dir, f"resumed-{leg}.pt"))
    finally:
        dist.destroy_process_group()


# --- the test side ------------------------------------------------------------------------------


def _single_process(leg, steps=STEPS):
    model = tiny_model()
    optimizer = _optimizer(leg, model.parameters())
    losses = _train(model, optimizer, steps)
    return losses, [p.detach().clone() for p in model.parameters()]


def _check_matches_one_process(what, got, leg):
    losses, params = _single_process(leg)
    agreement = Agreement(RTOL)
    agreement.check_all(f"{what}: parameters", got["params"], params)
    agreement.check(f"{what}: losses", torch.tensor(got["losses"]), torch.tensor(losses))
    assert not torch.equal(params[0], tiny_model()[0].weight), "training did not move the weights"


@pytest.mark.parametrize("world_size", [2, 4])
def test_fsdp2_training_matches_one_process(tmp_path, world_size):
    spawn(_training_worker, world_size, str(tmp_path))
    results = torch.load(tmp_path / "results.pt")
    for leg in LEGS:
        _check_matches_one_process(f"{leg} on {world_size} processes", results[leg], leg)
        layout = results[leg]["layout"]
        assert layout and all(is_dtensor and same for _, is_dtensor, same in layout), (leg, layout)
    _check_matches_one_process(f"AdamW with CPU offload on {world_size}", results["AdamW-offload"], "AdamW")
    assert "state_dtype='int8'" in results["int8"]["message"] and "DTensor" in results["int8"]["message"]
    assert results["int8"]["unchanged"]


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")
@pytest.mark.parametrize("leg", CHECKPOINTED)
def test_distributed_checkpoint_saved_on_two_processes_resumes_on_two_and_on_one(tmp_path, leg):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    spawn(_checkpoint_worker, 2, str(tmp_path), leg, False)
    spawn(_checkpoint_worker, 2, str(tmp_path), leg, True)
    expected_losses, expected_params = _single_process(leg)
    resumed = torch.load(tmp_path / f"resumed-{leg}.pt")
    agreement = Agreement(RTOL)
    agreement.check_all(f"{leg} resumed on 2 processes", resumed["params"], expected_params)
    agreement.check(f"{leg} resumed losses", torch.tensor(resumed["losses"]), torch.tensor(expected_losses[STEPS // 2 :]))

    # One process, no process group: the same checkpoint loads into a plain model.
    model = tiny_model()
    optimizer = _optimizer(leg, model.parameters())
    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
    dcp.load(state, checkpoint_id=str(tmp_path / f"checkpoint-{leg}"))
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optim"])
    losses = _train(model, optimizer, STEPS - STEPS // 2)
    agreement.check_all(f"{leg} resumed on 1 process", [p.detach() for p in model.parameters()], expected_params)
    agreement.check(f"{leg} resumed losses on 1 process", torch.tensor(losses), torch.tensor(expected_losses[STEPS // 2 :]))


def test_the_torchrun_example_trains_saves_and_resumes(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        os.path.join(root, "examples", "fsdp2_train.py"),
        "--width", "16", "--layers", "2", "--steps", "3", "--offload", "--checkpoint", str(tmp_path / "checkpoint"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    ranks_said = "\n".join(line for line in done.stderr.splitlines() if line.startswith("[rank"))
    assert done.returncode == 0, ranks_said[-4000:] or done.stderr[-4000:]
    assert "adamkit.torch.AdamW" in done.stdout and "after resuming" in done.stdout, done.stdout
    assert (tmp_path / "checkpoint" / ".metadata").exists()
