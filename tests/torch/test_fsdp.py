"""adamkit.torch under FSDP2 (``fully_shard``) on 2 and 4 CPU processes (gloo on loopback).

Parameters, gradients and state are DTensors sharded on dim 0, unevenly (17 and 3 rows over 2
or 4 ranks: one rank of 4 holds no row of the last layer). Every optimizer trains for 20 steps,
each rank on its part of the batch, and must match the same optimizer in one process on the
whole batch, in parameters and losses. Distributed checkpoints saved on 2 processes resume on
2 processes and on 1, and CPU offload (``CPUOffloadPolicy``) trains the same way.

8-bit state keeps its blocks within rows, so sharding cannot change it: stepping the same
DTensor parameters and gradients on 1, 2 or 4 processes gives the same bits, which are those
of the NumPy kernel on whole tensors in the row layout, and its distributed checkpoint resumes
bit for bit on 1 and on 2 processes.

Starting processes is slow: each group of processes (2, 1, 2 again to resume, and 4) starts
once per module and runs every scenario of its size; each test checks what its scenario left.
"""

import os
import subprocess
import sys

import pytest
import torch

import adamkit.torch
from adamkit.specs import SCALAR_STATE_KEYS
from tests.torch._compare import RICH, Agreement
from tests.torch._processes import MULTIPROCESS_MARKS, TIMEOUT_SECONDS, join_group, leave_group, spawn, train_rows, tiny_model

pytestmark = MULTIPROCESS_MARKS

BATCH = 16
STEPS = 20
RTOL = 1e-5
# Adafactor's column factor is replicated, not sharded as its parameter: it trains under FSDP2 in
# test_fsdp_whole_tensor_sums.py, with LAMB and cautious=True.
LEGS = (
    {name: (name, RICH[name]) for name in RICH if name != "Adafactor"}
    | {"Adam-reference": ("Adam", {**RICH["Adam"], "fused": False})}
    | {"Lion": ("Lion", dict(lr=1e-3, betas=(0.85, 0.97), weight_decay=0.1))}
    | {"AdaBelief": ("AdaBelief", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, rectify=True))}
    | {"AdamWScheduleFree": ("AdamWScheduleFree", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05, warmup_steps=3, r=1.0))}
)
CHECKPOINTED = ("Adam", "AdamW", "SGD")


# --- what every process runs -------------------------------------------------------------------


def _optimizer(leg, params):
    name, hyper = LEGS[leg]
    optimizer = getattr(adamkit.torch, name)(params, **hyper)
    if optimizer.spec.has_modes:
        optimizer.train()  # Schedule-Free steps in train mode only
    return optimizer


def _train(model, optimizer, steps, rank=0, world_size=1):
    return train_rows(model, optimizer, steps, BATCH, rank, world_size)


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
            if key not in SCALAR_STATE_KEYS:  # 0-d, kept plain as torch keeps them
                layout.append((key, isinstance(value, DTensor), getattr(value, "placements", None) == param.placements))
    return layout


def _worker(rank, world_size, rendezvous, out_dir, jobs):
    """Run each ``(job, args)`` of ``jobs`` as ``job(rank, world_size, out_dir, *args)``, all in
    one process group (starting processes is slow)."""
    join_group(rank, world_size, rendezvous)
    completed = False
    try:
        for job, args in jobs:
            job(rank, world_size, out_dir, *args)
        completed = True
    finally:
        leave_group(completed)


def _in_backward_refused(rank, world_size, out_dir):
    """step_in_backward=True refuses sharded parameters (on one process) and any optimizer
    under torch.distributed over more processes, at construction."""
    model = _sharded_model(world_size)
    try:
        adamkit.torch.AdamW(model.parameters(), step_in_backward=True)
        message = None
    except (TypeError, ValueError) as error:
        message = f"{type(error).__name__}: {error}"
    if rank == 0:
        torch.save(message, os.path.join(out_dir, f"in-backward-{world_size}.pt"))


def _training(rank, world_size, out_dir):
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
    if rank == 0:
        torch.save(results, os.path.join(out_dir, f"results-{world_size}.pt"))


def _checkpoint(rank, world_size, out_dir, leg, resume):
    """Train half the steps and save a distributed checkpoint, or (``resume``) load it and train on."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    model = _sharded_model(world_size)
    optimizer = _optimizer(leg, model.parameters())
    checkpoint = os.path.join(out_dir, f"checkpoint-{leg}")
    if not resume:
        _train(model, optimizer, STEPS // 2, rank, world_size)
        state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        dcp.save(state, checkpoint_id=checkpoint)
    else:
        state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        dcp.load(state, checkpoint_id=checkpoint)
        set_model_state_dict(model, state["model"])
        set_optimizer_state_dict(model, optimizer, state["optim"])
        losses = _train(model, optimizer, STEPS - STEPS // 2, rank, world_size)
        params = _full(model)  # a collective: every rank takes part
        if rank == 0:
            torch.save({"losses": losses, "params": params}, os.path.join(out_dir, f"resumed-{leg}.pt"))


# --- the test side ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The directory where every process group of this module leaves its results."""
    return tmp_path_factory.mktemp("fsdp")


@pytest.fixture(scope="module")
def on_two(runs):
    """Two processes train every leg, save a distributed checkpoint of each checkpointed leg half
    way, and step each 8-bit optimizer (saving its checkpoint)."""
    jobs = [(_training, ()), *((_checkpoint, (leg, False)) for leg in CHECKPOINTED)]
    jobs.append((_in_backward_refused, ()))
    spawn(_worker, 2, str(runs), jobs + [(_int8, ("", name)) for name in INT8_NAMES])
    return runs


@pytest.fixture(scope="module")
def resumed_on_two(on_two):
    """Two new processes resume the checkpoints saved on two."""
    jobs = [*((_checkpoint, (leg, True)) for leg in CHECKPOINTED), (_int8, (SAVED_INT8, "Adam"))]
    spawn(_worker, 2, str(on_two), jobs)
    return on_two


@pytest.fixture(scope="module")
def on_one(on_two):
    """One process steps each 8-bit optimizer, and resumes the 8-bit checkpoint saved on two."""
    jobs = [*((_int8, ("", name)) for name in INT8_NAMES), (_int8, (SAVED_INT8, "Adam")), (_in_backward_refused, ())]
    spawn(_worker, 1, str(on_two), jobs)
    return on_two


@pytest.fixture(scope="module")
def on_four(runs):
    """Four processes train every leg and step 8-bit Adam."""
    spawn(_worker, 4, str(runs), [(_training, ()), (_int8, ("", "Adam"))])
    return runs


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
def test_fsdp2_training_matches_one_process(request, world_size):
    runs = request.getfixturevalue({2: "on_two", 4: "on_four"}[world_size])
    results = torch.load(runs / f"results-{world_size}.pt")
    for leg in LEGS:
        _check_matches_one_process(f"{leg} on {world_size} processes", results[leg], leg)
        layout = results[leg]["layout"]
        assert layout and all(is_dtensor and same for _, is_dtensor, same in layout), (leg, layout)
    _check_matches_one_process(f"AdamW with CPU offload on {world_size}", results["AdamW-offload"], "AdamW")


def test_step_in_backward_refuses_shards_and_processes(on_two, on_one):
    on_shards = torch.load(on_one / "in-backward-1.pt")
    assert on_shards.startswith("TypeError: param_groups[0]['params'][0] is sharded (a DTensor"), on_shards
    on_two_processes = torch.load(on_two / "in-backward-2.pt")
    assert on_two_processes.startswith("ValueError: step_in_backward=True cannot be used with torch.distributed over 2")


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")
@pytest.mark.parametrize("leg", CHECKPOINTED)
def test_distributed_checkpoint_saved_on_two_processes_resumes_on_two_and_on_one(resumed_on_two, leg):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    expected_losses, expected_params = _single_process(leg)
    resumed = torch.load(resumed_on_two / f"resumed-{leg}.pt")
    agreement = Agreement(RTOL)
    agreement.check_all(f"{leg} resumed on 2 processes", resumed["params"], expected_params)
    agreement.check(f"{leg} resumed losses", torch.tensor(resumed["losses"]), torch.tensor(expected_losses[STEPS // 2 :]))

    # One process, no process group: the same checkpoint loads into a plain model.
    model = tiny_model()
    optimizer = _optimizer(leg, model.parameters())
    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
    dcp.load(state, checkpoint_id=str(resumed_on_two / f"checkpoint-{leg}"))
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


# --- 8-bit state: the same blocks on any number of processes -----------------------------------

INT8_SHAPES = [(17, 300), (3, 4097), (64, 64), (5000,)]  # (5000,) is 1-d: float32 state when sharded
INT8_HYPERS = {
    "Adam": dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
    "Adamax": dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, maximize=True),
    "Adadelta": dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1),
    "AdaBelief": dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True, rectify=True),
    "AdEMAMix": dict(lr=1e-2, betas=(0.8, 0.99, 0.999), t_alpha_beta3=3, weight_decay=0.1, maximize=True),
    "RAdam": dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1, maximize=True),
}
INT8_STEPS, INT8_SAVE_AT = 6, 3
INT8_NAMES = tuple(INT8_HYPERS)
SAVED_INT8 = "int8-Adam-checkpoint-2"  # the 8-bit checkpoint that one and two processes resume


def _int8_tensors(step=None):
    generator = torch.Generator().manual_seed(50 if step is None else 60 + step)
    return [torch.randn(shape, generator=generator) * (1 if step is None else 0.1) for shape in INT8_SHAPES]


def _int8(rank, world_size, out_dir, resume_from, name):
    """Step DTensor parameters with the 8-bit optimizer ``name``; save the full parameters and
    decoded state.

    With ``resume_from``, load that distributed checkpoint (saved after INT8_SAVE_AT steps)
    and step on from there; otherwise save one at that point.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world_size,))
    params = [torch.nn.Parameter(distribute_tensor(t, mesh, [Shard(0)])) for t in _int8_tensors()]
    optimizer = getattr(adamkit.torch, name)(params, state_dtype="int8", **INT8_HYPERS[name])
    first = 0
    if resume_from:
        for param, grad in zip(params, _int8_tensors(0)):
            param.grad = distribute_tensor(grad, mesh, [Shard(0)])
        optimizer.step()  # creates the state that the checkpoint overwrites
        state = {"optim": optimizer.state_dict()}
        dcp.load(state, checkpoint_id=os.path.join(out_dir, resume_from))
        optimizer.load_state_dict(state["optim"])
        with torch.no_grad():
            for param, value in zip(params, torch.load(os.path.join(out_dir, resume_from + ".params.pt"))):
                param.copy_(distribute_tensor(value, mesh, [Shard(0)]))
        first = INT8_SAVE_AT
    for step in range(first, INT8_STEPS):
        if step == INT8_SAVE_AT and not resume_from:
            checkpoint = f"int8-{name}-checkpoint-{world_size}"
            dcp.save({"optim": optimizer.state_dict()}, checkpoint_id=os.path.join(out_dir, checkpoint))
            full = [p.full_tensor() for p in params]
            if rank == 0:
                torch.save(full, os.path.join(out_dir, checkpoint + ".params.pt"))
        for param, grad in zip(params, _int8_tensors(step)):
            param.grad = distribute_tensor(grad, mesh, [Shard(0)])
        optimizer.step()
    exported = optimizer.export_torch_state_dict()["state"]
    kinds = [{k: (v.dtype, type(v).__name__) for k, v in optimizer.state[p].items()} for p in params]
    full_state = [{k: v.full_tensor() for k, v in exported[i].items() if k != "step"} for i in range(len(params))]
    full_params = [p.full_tensor() for p in params]
    if rank == 0:
        result = {"params": full_params, "state": full_state, "kinds": kinds}
        torch.save(result, os.path.join(out_dir, f"int8-{name}-{world_size}-{resume_from or 'fresh'}.pt"))


def _int8_on_whole_tensors(name):
    """The NumPy kernel on whole tensors, 2-d ones in the row layout: the expected bits."""
    import numpy as np

    from adamkit.compact.int8 import absmax_shape
    from adamkit.kernels import quantized

    spec = getattr(adamkit.torch, name).spec
    picked = [t.numpy().copy() for t in _int8_tensors() if t.dim() == 2]
    keys = quantized.state_keys(spec, INT8_HYPERS[name])
    states = [
        {
            entry: np.zeros(shape, dtype)
            for key in keys
            for entry, shape, dtype in (
                (quantized.codes_key(key), param.shape, quantized.CODE_DTYPES[key]),
                (quantized.scales_key(key), absmax_shape(param.shape, rows=True), np.float32),
            )
        }
        for param in picked
    ]
    for step in range(INT8_STEPS):
        grads = [g.numpy() for g in _int8_tensors(step) if g.dim() == 2]
        quantized.update(spec, picked, grads, states, [step + 1] * len(picked), **INT8_HYPERS[name])
    return picked


def _assert_bitwise(what, got, want):
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        assert torch.equal(a, b), f"{what}: tensor {index} differs"


def test_int8_state_gives_the_same_bits_on_one_two_and_four_processes_and_resumes(on_one, resumed_on_two, on_four):
    results = {w: torch.load(on_one / f"int8-Adam-{w}-fresh.pt") for w in (1, 2, 4)}
    kinds = results[2]["kinds"]
    for kind in kinds[:3]:  # 2-d: codes and scales, all DTensors
        assert kind["exp_avg_codes"] == (torch.int8, "DTensor") and kind["exp_avg_absmax"] == (torch.float32, "DTensor")
    assert kinds[3]["exp_avg"] == (torch.float32, "DTensor")  # a sharded 1-d parameter keeps float32
    for world_size in (2, 4):
        _assert_bitwise(f"parameters on {world_size}", results[world_size]["params"], results[1]["params"])
        for got, want in zip(results[world_size]["state"], results[1]["state"]):
            _assert_bitwise(f"state on {world_size}", list(got.values()), list(want.values()))
    expected = _int8_on_whole_tensors("Adam")
    _assert_bitwise("one process against the NumPy kernel", results[1]["params"][:3], [torch.from_numpy(p) for p in expected])

    # A checkpoint saved on 2 processes resumes on 1 and on 2 to the same bits.
    for world_size in (1, 2):
        resumed = torch.load(on_one / f"int8-Adam-{world_size}-{SAVED_INT8}.pt")
        _assert_bitwise(f"resumed on {world_size}", resumed["params"], results[2]["params"])
        for got, want in zip(resumed["state"], results[2]["state"]):
            _assert_bitwise(f"resumed state on {world_size}", list(got.values()), list(want.values()))


@pytest.mark.parametrize("name", ["Adamax", "Adadelta", "RAdam", "AdaBelief", "AdEMAMix"])
def test_int8_state_of_more_rules_gives_the_same_bits_on_one_and_two_processes(on_one, name):
    results = {w: torch.load(on_one / f"int8-{name}-{w}-fresh.pt") for w in (1, 2)}
    first = getattr(adamkit.torch, name).spec.slots[0].key
    for kind in results[2]["kinds"][:3]:  # 2-d: codes and scales, all DTensors
        assert kind[first + "_codes"][1] == "DTensor" and kind[first + "_absmax"] == (torch.float32, "DTensor")
    _assert_bitwise("parameters on 2", results[2]["params"], results[1]["params"])
    for got, want in zip(results[2]["state"], results[1]["state"]):
        _assert_bitwise("state on 2", list(got.values()), list(want.values()))
    expected = [torch.from_numpy(p) for p in _int8_on_whole_tensors(name)]
    _assert_bitwise("one process against the NumPy kernel", results[1]["params"][:3], expected)
