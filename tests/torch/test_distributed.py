"""adamkit.torch under torch.distributed: DDP and ZeroRedundancyOptimizer on two CPU processes
(gloo on loopback), with the fused kernels and with 8-bit state, compared with single-process
runs on the full batch."""

import copy
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import adamkit.torch
from tests.torch._compare import Agreement, both
from tests.torch._processes import MULTIPROCESS_MARKS, join_group, leave_group, spawn, tiny_batch, tiny_model
from tests.torch._rule_optimizer import rule_optimizer

pytestmark = MULTIPROCESS_MARKS

WORLD_SIZE = 2
BATCH = 16  # each rank trains on its half
HYPER = {
    "Adam": dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05, amsgrad=True),
    "AdamW": dict(lr=1e-2, weight_decay=0.1),
    "Adafactor": dict(lr=0.05, weight_decay=0.05, d=1.5, beta2_decay=-0.6),
    "NAdam": dict(lr=1e-2, weight_decay=0.05, momentum_decay=0.05, decoupled_weight_decay=True),
    "AdaBelief": dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.05, amsgrad=True, rectify=True),
    "ADOPT": dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05, decoupled_weight_decay=True),
    "AdEMAMix": dict(lr=1e-2, betas=(0.8, 0.99, 0.999), t_alpha_beta3=4, weight_decay=0.1),
    "RAdam": dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.05, decoupled_weight_decay=True),
    "LAMB": dict(lr=1e-2, weight_decay=0.1, trust_clip=5.0),
    "Lion": dict(lr=1e-3, betas=(0.85, 0.97), weight_decay=0.1),
    "AdamWScheduleFree": dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05, warmup_steps=3, r=1.0),
    # cautious=True counts over whole tensors, which DDP and ZeRO keep whole; torch has no such
    # option, so the rule stands in for torch's class.
    "AdamW+cautious": dict(lr=1e-2, weight_decay=0.1, cautious=True),
}
DDP_STEPS = 8
ZERO_FIRST_STEPS, ZERO_MORE_STEPS = 5, 5
RTOL = 1e-5


def _class_name(name):
    """The optimizer of a key of ``HYPER``: the part before a ``+`` naming its variant."""
    return name.split("+")[0]


def _both(name):
    """:func:`tests.torch._compare.both` of the key's optimizer; for a variant torch's class cannot
    take, the rule in its place."""
    if "+" in name:
        return rule_optimizer(_class_name(name)), getattr(adamkit.torch, _class_name(name))
    return both(name)


# --- what every process runs -------------------------------------------------------------------


def _train(model, optimizer, steps, rows=slice(None)):
    """``steps`` steps of the mean squared error on ``rows`` of the batch, in train mode for an
    optimizer that has modes (Schedule-Free)."""
    _train_mode(optimizer)
    inputs, targets = tiny_batch(BATCH)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs[rows]), targets[rows])
        loss.backward()
        optimizer.step()


def _train_mode(optimizer):
    """Put a Schedule-Free optimizer in train mode; under ZeRO the optimizer it shards, whose
    groups ZeRO then copies into its own, as it does after each step (before each, it copies
    its own into the sharded optimizer's)."""
    sharded = getattr(optimizer, "optim", optimizer)
    if not hasattr(sharded, "train"):  # no modes (the rule that stands in for torch's class has none)
        return
    sharded.train()
    if sharded is not optimizer:
        optimizer._sync_param_groups(sharded.param_groups, optimizer.param_groups)


def _rows(rank):
    half = BATCH // WORLD_SIZE
    return slice(rank * half, (rank + 1) * half)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _worker(rank, world_size, rendezvous, out_dir):
    """Everything the two processes do, in one process group (starting processes is slow)."""
    join_group(rank, world_size, rendezvous)
    completed = False
    try:
        for name in HYPER:
            _ddp_leg(rank, out_dir, name)
            _zero_legs(rank, out_dir, name)
        _int8_legs(rank, out_dir)
        _in_backward_leg(rank, out_dir)
        completed = True
    finally:
        leave_group(completed)


def _ddp_leg(rank, out_dir, name):
    model = tiny_model()
    ddp = DistributedDataParallel(model)
    optimizer = getattr(adamkit.torch, _class_name(name))(ddp.parameters(), **HYPER[name])
    _train(ddp, optimizer, DDP_STEPS, _rows(rank))
    torch.save(_params(model), os.path.join(out_dir, f"ddp-{name}-rank{rank}.pt"))


INT8 = dict(lr=1e-2, weight_decay=0.05, state_dtype="int8")


def _wide_model():
    """The first layer's weight (640 x 7) is large enough for 8-bit state; the rest stay float32."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 640), torch.nn.Tanh(), torch.nn.Linear(640, 3))


def _int8_legs(rank, out_dir):
    """DDP and ZeRO with 8-bit Adam state: the replicas agree, and ZeRO's consolidated
    checkpoint holds the codes."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    model = _wide_model()
    ddp = DistributedDataParallel(model)
    _train(ddp, adamkit.torch.Adam(ddp.parameters(), **INT8), DDP_STEPS, _rows(rank))
    torch.save(_params(model), os.path.join(out_dir, f"int8-ddp-rank{rank}.pt"))

    model = _wide_model()
    ddp = DistributedDataParallel(model)
    optimizer = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=adamkit.torch.Adam, **INT8)
    _train(ddp, optimizer, ZERO_FIRST_STEPS, _rows(rank))
    optimizer.consolidate_state_dict(to=0)
    if rank == 0:
        torch.save({"params": _params(model), "state": optimizer.state_dict()}, os.path.join(out_dir, "int8-zero.pt"))


def _in_backward_leg(rank, out_dir):
    """step_in_backward=True is refused at construction under DDP and ZeRO: a hook would step
    before the all-reduce (DDP) or with a shard's gradient (ZeRO)."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    ddp = DistributedDataParallel(tiny_model())
    messages = []
    for make in (
        lambda: adamkit.torch.AdamW(ddp.parameters(), step_in_backward=True),
        lambda: ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=adamkit.torch.AdamW, step_in_backward=True),
    ):
        try:
            make()
            messages.append(None)
        except ValueError as error:
            messages.append(str(error))
    if rank == 0:
        torch.save(messages, os.path.join(out_dir, "in-backward.pt"))


def _zero(model, name):
    # Imported here: torch.distributed.optim is slow to import and floods the test process
    # with torch.jit deprecation warnings, and only the workers need it.
    from torch.distributed.optim import ZeroRedundancyOptimizer

    return ZeroRedundancyOptimizer(
        model.parameters(), optimizer_class=getattr(adamkit.torch, _class_name(name)), **HYPER[name]
    )


def _zero_legs(rank, out_dir, name):
    def path(what):
        return os.path.join(out_dir, f"zero-{name}-{what}.pt")

    model = tiny_model()
    ddp = DistributedDataParallel(model)
    optimizer = _zero(ddp, name)
    assert type(optimizer.optim) is getattr(adamkit.torch, _class_name(name))
    _train(ddp, optimizer, ZERO_FIRST_STEPS, _rows(rank))
    shard = [tuple(p.shape) for g in optimizer.optim.param_groups for p in g["params"]]
    torch.save({"params": _params(model), "shard": shard}, path(f"first-rank{rank}"))
    optimizer.consolidate_state_dict(to=0)
    if rank == 0:
        torch.save(optimizer.state_dict(), path("consolidated"))
    dist.barrier()

    # A restart: a fresh model and a fresh ZeRO optimizer load the checkpoint on both ranks.
    restarted = tiny_model()
    restarted.load_state_dict(model.state_dict())
    ddp = DistributedDataParallel(restarted)
    optimizer = _zero(ddp, name)
    optimizer.load_state_dict(torch.load(path("consolidated")))
    _train(ddp, optimizer, ZERO_MORE_STEPS, _rows(rank))
    torch.save(_params(restarted), path(f"final-rank{rank}"))


# --- the test side ------------------------------------------------------------------------------


def _single_process(cls, name, steps):
    model = tiny_model()
    optimizer = cls(model.parameters(), **HYPER[name])
    _train(model, optimizer, steps)
    return model, optimizer



def _assert_bitwise_same(first, second, what):
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        assert torch.equal(a, b), f"{what}: parameter {index} differs between the ranks"





def _check_ddp(tmp_path, name):
    """(a) DDP: both ranks hold the same parameters, those of one process on the full batch."""
    rank0, rank1 = (torch.load(tmp_path / f"ddp-{name}-rank{rank}.pt") for rank in range(WORLD_SIZE))
    _assert_bitwise_same(rank0, rank1, name)
    for cls in reversed(_both(name)):
        model, _ = _single_process(cls, name, DDP_STEPS)
        Agreement(RTOL).check_all(f"{name} vs {cls.__module__}", rank0, _params(model))
    assert not torch.equal(rank0[0], _params(tiny_model())[0]), "training did not move the weights"


def _assert_torch_layout(consolidated, reference):
    """The consolidated ZeRO state_dict is laid out like torch.optim's and holds the same state."""
    expected = reference.state_dict()
    assert consolidated["state"].keys() == expected["state"].keys() == {0, 1, 2, 3}
    agreement = Agreement(RTOL)
    for index, state in expected["state"].items():
        assert consolidated["state"][index].keys() == state.keys(), index
        for key, value in state.items():
            got = consolidated["state"][index][key]
            assert got.dtype == value.dtype and got.shape == value.shape, (index, key)
            if key == "step":
                assert got.item() == value.item()
            else:
                agreement.check(f"state[{index}][{key!r}]", got, value)
    assert len(consolidated["param_groups"]) == len(expected["param_groups"]) == 1
    group, torch_group = consolidated["param_groups"][0], expected["param_groups"][0]
    assert group["params"] == torch_group["params"] == [0, 1, 2, 3]
    for key, value in torch_group.items():
        assert group[key] == value, key


def _check_zero(tmp_path, name):
    """(b) ZeRO with adamkit's optimizers trains like torch.optim in one process, and its
    consolidated checkpoint has torch's layout and resumes in ZeRO and in plain adamkit."""
    first = [torch.load(tmp_path / f"zero-{name}-first-rank{rank}.pt") for rank in range(WORLD_SIZE)]
    final = [torch.load(tmp_path / f"zero-{name}-final-rank{rank}.pt") for rank in range(WORLD_SIZE)]
    consolidated = torch.load(tmp_path / f"zero-{name}-consolidated.pt")

    # The parameters are sharded: each rank's adamkit optimizer holds a part, together all.
    shards = [info["shard"] for info in first]
    assert all(shards) and sorted(map(tuple, shards[0] + shards[1])) == sorted(
        tuple(p.shape) for p in tiny_model().parameters()
    )
    _assert_bitwise_same(first[0]["params"], first[1]["params"], f"{name} after the first leg")
    _assert_bitwise_same(final[0], final[1], f"{name} after the resumed leg")

    torch_class, _ = _both(name)
    model, optimizer = _single_process(torch_class, name, ZERO_FIRST_STEPS)
    Agreement(RTOL).check_all(f"{name} first leg", first[0]["params"], _params(model))
    _assert_torch_layout(consolidated, optimizer)

    _train(model, optimizer, ZERO_MORE_STEPS)
    Agreement(RTOL).check_all(f"{name} resumed ZeRO", final[0], _params(model))

    # The consolidated checkpoint also resumes in a plain, single-process adamkit optimizer.
    plain = tiny_model()
    with torch.no_grad():
        for param, value in zip(plain.parameters(), first[0]["params"]):
            param.copy_(value)
    plain_optimizer = getattr(adamkit.torch, _class_name(name))(plain.parameters(), **HYPER[name])
    plain_optimizer.load_state_dict(copy.deepcopy(consolidated))
    _train(plain, plain_optimizer, ZERO_MORE_STEPS)
    Agreement(RTOL).check_all(f"{name} resumed single-process", _params(plain), _params(model))


def _check_int8(tmp_path):
    """(c) 8-bit state: DDP's replicas agree bitwise and track one process on the whole batch;
    ZeRO's consolidated checkpoint holds 8-bit codes and resumes in a single-process optimizer."""
    rank0, rank1 = (torch.load(tmp_path / f"int8-ddp-rank{rank}.pt") for rank in range(WORLD_SIZE))
    _assert_bitwise_same(rank0, rank1, "8-bit DDP")
    model = _wide_model()
    _train(model, adamkit.torch.Adam(model.parameters(), **INT8), DDP_STEPS)
    # The averaged half-batch gradients differ from the whole batch's in the last bits, which
    # can move a code by one step: agreement to 1e-3 of each parameter's scale, not bitwise.
    Agreement(1e-3).check_all("8-bit DDP vs one process", rank0, _params(model))

    saved = torch.load(tmp_path / "int8-zero.pt")
    state = saved["state"]["state"]
    assert state[0]["exp_avg_codes"].dtype == torch.int8 and state[0]["exp_avg_sq_codes"].dtype == torch.uint8
    assert state[0]["exp_avg_absmax"].dtype == torch.float32 and state[2]["exp_avg"].dtype == torch.float32
    plain = _wide_model()
    with torch.no_grad():
        for param, value in zip(plain.parameters(), saved["params"]):
            param.copy_(value)
    optimizer = adamkit.torch.Adam(plain.parameters(), **INT8)
    optimizer.load_state_dict(copy.deepcopy(saved["state"]))
    for key in ("exp_avg_codes", "exp_avg_sq_codes", "exp_avg_absmax"):
        assert torch.equal(optimizer.state[plain[0].weight][key], state[0][key]), key
    _train(plain, optimizer, ZERO_MORE_STEPS)
    assert optimizer.state[plain[0].weight]["exp_avg_codes"].dtype == torch.int8


def test_ddp_and_zero_redundancy_optimizer_on_two_processes(tmp_path):
    """One pair of processes runs every scenario; each check below names the one that fails."""
    spawn(_worker, WORLD_SIZE, str(tmp_path))
    _check_int8(tmp_path)
    for message in torch.load(tmp_path / "in-backward.pt"):
        assert message and "step_in_backward=True cannot be used with torch.distributed over 2 processes" in message
        assert "before its gradient is all-reduced" in message
    for name in HYPER:
        _check_ddp(tmp_path, name)
        _check_zero(tmp_path, name)
