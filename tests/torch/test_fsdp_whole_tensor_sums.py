"""The rules whose step sums over a whole tensor, under FSDP2 on 2 CPU processes (gloo).

LAMB's trust ratio, Adafactor's factors and root mean squares, and ``cautious=True``'s kept
fraction reduce over whole parameters; sharded, their sums are added over the processes
(``adamkit.torch._shard_sums``, ``_adafactor_shards``). Each leg trains a model with 2-d, 1-d
and 3-d parameters, all split unevenly over 2 processes (17, 3 and 5 along dim 0), each process
on its half of the batch, and must match the same optimizer on one process to 1e-5. Distributed
checkpoints resume mid-way, into new optimizers. Parameters split along another dim than
FSDP2's (``Shard(1)``) are summed as well, and what is still refused says why.

One group of 2 processes runs every scenario (starting processes is slow).
"""

import os

import pytest
import torch
import torch.distributed as dist

import adamkit.torch
from tests.torch._compare import Agreement
from tests.torch._processes import MULTIPROCESS_MARKS, join_group, leave_group, spawn, train_rows

pytestmark = MULTIPROCESS_MARKS

WORLD_SIZE = 2
BATCH = 16
STEPS = 6
RTOL = 1e-5
ADAFACTOR = dict(lr=0.05, weight_decay=0.1, d=1.5, beta2_decay=-0.6, eps=(1e-20, 1e-2))
LEGS = {
    "LAMB": ("LAMB", dict(lr=2e-2, betas=(0.8, 0.99), weight_decay=0.1, trust_clip=3.0)),
    "LAMB-maximize": ("LAMB", dict(lr=1e-2, eps=1e-3, maximize=True)),
    "Adafactor": ("Adafactor", ADAFACTOR),
    "Adafactor-maximize": ("Adafactor", dict(lr=0.5, eps=(None, 1e-3), maximize=True, beta2_decay=-1.0)),
    "Adam-cautious": ("Adam", dict(lr=1e-2, weight_decay=0.1, cautious=True)),
    "AdamW-cautious": ("AdamW", dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1, cautious=True, amsgrad=True)),
    "Lion-cautious": ("Lion", dict(lr=1e-3, betas=(0.85, 0.97), weight_decay=0.1, cautious=True)),
}
CHECKPOINTED = ("LAMB", "Adafactor")  # Adafactor: a replicated column factor


class Stacked(torch.nn.Module):
    """Three 3-d weights as a stack of 5 matrices (3x3): sharded between matrices."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(5, 3, 3) / 3)

    def forward(self, x):
        return torch.einsum("bi,kij->bj", x, self.weight) / 5


def _model():
    """A 7-17-3 MLP and a stack of 3x3 matrices: 17, 3 and 5 shard unevenly over 2 processes."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 17), torch.nn.Tanh(), torch.nn.Linear(17, 3), Stacked())


def _sharded_model():
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (WORLD_SIZE,))
    model = _model()
    for layer in model:
        if any(True for _ in layer.parameters()):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _optimizer(leg, params):
    name, hyper = LEGS[leg]
    return getattr(adamkit.torch, name)(params, **hyper)


def _train(model, optimizer, steps, rank=0, world_size=1):
    return train_rows(model, optimizer, steps, BATCH, rank, world_size)


def _full(model):
    return [p.full_tensor().detach().clone() for p in model.parameters()]


def _state_kinds(model, optimizer):
    """Per parameter and state tensor: its key and placements (the step's 0-d tensor aside)."""
    return [
        {key: tuple(str(p) for p in value.placements) for key, value in optimizer.state[param].items() if value.dim()}
        for param in model.parameters()
    ]


def _refusal(action):
    try:
        action()
    except (NotImplementedError, TypeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


# --- what every process runs -------------------------------------------------------------------


def _worker(rank, world_size, rendezvous, out_dir):
    join_group(rank, world_size, rendezvous)
    completed = False
    try:
        results = {leg: _trained(leg, rank) for leg in LEGS}
        for leg in CHECKPOINTED:
            results[f"{leg}-resumed"] = _resumed(leg, rank, os.path.join(out_dir, f"checkpoint-{leg}"))
        results["shard-1"] = _split_along_columns(rank)
        results["refusals"] = _refusals()
        if rank == 0:
            torch.save(results, os.path.join(out_dir, "results.pt"))
        completed = True
    finally:
        leave_group(completed)


def _trained(leg, rank):
    model = _sharded_model()
    optimizer = _optimizer(leg, model.parameters())
    losses = _train(model, optimizer, STEPS, rank, WORLD_SIZE)
    return {"losses": losses, "params": _full(model), "state": _state_kinds(model, optimizer)}


def _resumed(leg, rank, checkpoint):
    """Train half the steps, save a distributed checkpoint, load it into a new model and
    optimizer, and train the other half."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    model = _sharded_model()
    optimizer = _optimizer(leg, model.parameters())
    _train(model, optimizer, STEPS // 2, rank, WORLD_SIZE)
    dcp.save(
        {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)},
        checkpoint_id=checkpoint,
    )
    model = _sharded_model()
    optimizer = _optimizer(leg, model.parameters())
    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
    dcp.load(state, checkpoint_id=checkpoint)
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optim"])
    losses = _train(model, optimizer, STEPS - STEPS // 2, rank, WORLD_SIZE)
    return {"losses": losses, "params": _full(model)}


def _split_along_columns(rank):
    """LAMB and cautious AdamW on matrices split along dim 1 (``Shard(1)``, 7 columns over 2)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (WORLD_SIZE,))
    results = {}
    for leg in ("LAMB", "AdamW-cautious"):
        params = [torch.nn.Parameter(distribute_tensor(t, mesh, [Shard(1)])) for t in _column_tensors()]
        optimizer = _optimizer(leg, params)
        for step in range(3):
            for param, grad in zip(params, _column_tensors(step)):
                param.grad = distribute_tensor(grad, mesh, [Shard(1)])
            optimizer.step()
        results[leg] = [p.full_tensor() for p in params]
    return results


def _column_tensors(step=None):
    generator = torch.Generator().manual_seed(70 if step is None else 80 + step)
    return [torch.randn(shape, generator=generator) for shape in ((4, 7), (17, 4097 // 17 + 1))]


def _refusals():
    """What is still refused, with its message; a refused step leaves everything as it was."""
    from torch.distributed.tensor import Shard, distribute_tensor

    model = _sharded_model()
    mesh = next(model.parameters()).device_mesh
    by_columns = [torch.nn.Parameter(distribute_tensor(torch.ones(4, 6), mesh, [Shard(1)]))]
    refusals = {
        "Adafactor-Shard(1)": _refusal(lambda: adamkit.torch.Adafactor(by_columns)),
        "Adafactor-foreach": _refusal(lambda: adamkit.torch.Adafactor(model.parameters(), foreach=True)),
        "cautious-fused=False": _refusal(lambda: adamkit.torch.AdamW(model.parameters(), cautious=True, fused=False)),
    }
    before = _full(model)
    cautious = adamkit.torch.AdamW(model.parameters(), cautious=True)
    cautious.param_groups[0]["fused"] = False
    refusals["cautious-fused=False-at-step"] = _refusal(lambda: _train(model, cautious, 1, dist.get_rank(), WORLD_SIZE))
    refusals["unchanged"] = all(torch.equal(a, b) for a, b in zip(before, _full(model))) and not cautious.state
    return refusals


# --- the test side ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("whole-tensor-sums")
    spawn(_worker, WORLD_SIZE, str(out_dir))
    return torch.load(out_dir / "results.pt")


def _one_process(leg, steps=STEPS):
    model = _model()
    optimizer = _optimizer(leg, model.parameters())
    losses = _train(model, optimizer, steps)
    return losses, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("leg", LEGS)
def test_two_processes_train_as_one(results, leg):
    losses, params = _one_process(leg)
    got = results[leg]
    agreement = Agreement(RTOL)
    agreement.check_all(f"{leg}: parameters", got["params"], params)
    agreement.check(f"{leg}: losses", torch.tensor(got["losses"]), torch.tensor(losses))
    assert not torch.equal(params[0], _model()[0].weight), "training did not move the weights"
    for kinds in got["state"]:
        assert kinds and all(placements for placements in kinds.values()), kinds  # every slot a DTensor


def test_adafactor_state_is_sharded_by_rows_and_its_column_factor_replicated(results):
    weight, bias, _, _, stack = results["Adafactor"]["state"]
    assert weight == {"row_var": ("S(0)",), "col_var": ("R",)}, weight
    assert bias == {"variance": ("S(0)",)}, bias
    assert stack == {"row_var": ("S(0)",), "col_var": ("S(0)",)}, stack  # split between whole matrices


@pytest.mark.parametrize("leg", CHECKPOINTED)
def test_distributed_checkpoints_resume(results, leg):
    losses, params = _one_process(leg)
    got = results[f"{leg}-resumed"]
    agreement = Agreement(RTOL)
    agreement.check_all(f"{leg} resumed: parameters", got["params"], params)
    agreement.check(f"{leg} resumed: losses", torch.tensor(got["losses"]), torch.tensor(losses[STEPS // 2 :]))


@pytest.mark.parametrize("leg", ["LAMB", "AdamW-cautious"])
def test_tensors_split_along_columns_step_as_whole_ones(results, leg):
    params = [torch.nn.Parameter(t) for t in _column_tensors()]
    optimizer = _optimizer(leg, params)
    for step in range(3):
        for param, grad in zip(params, _column_tensors(step)):
            param.grad = grad
        optimizer.step()
    Agreement(RTOL).check_all(f"{leg} on Shard(1)", results["shard-1"][leg], [p.detach() for p in params])


def test_what_cannot_be_summed_is_refused_precisely(results):
    refusals = results["refusals"]
    assert refusals["Adafactor-Shard(1)"] == (
        "NotImplementedError: param_groups[0]['params'][0] is sharded across processes as (Shard(dim=1),) "
        "(FSDP2), and split along its last axis: adamkit adds Adafactor's sums over rows, not over columns: "
        "Adafactor's factors and root mean squares need sums over the whole tensor"
    ), refusals
    assert refusals["Adafactor-foreach"].startswith("NotImplementedError: param_groups[0]['params'][0] is sharded")
    assert "foreach=True asks for torch's implementation" in refusals["Adafactor-foreach"]
    assert refusals["cautious-fused=False"] == (
        "NotImplementedError: param_groups[0]['params'][0] is sharded across processes as (Shard(dim=0),) (FSDP2): cautious=True's "
        "rescale by the kept fraction needs sums over the whole tensor, which adamkit all-reduces only in its C "
        "kernels on the CPU, and fused=False steps it with the reference backend"
    ), refusals
    assert refusals["cautious-fused=False-at-step"] == refusals["cautious-fused=False"], refusals
    assert refusals["unchanged"]
