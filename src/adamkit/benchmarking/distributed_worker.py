"""What each process of ``adamkit bench --distributed`` runs: for every wrapper and rule, time
the optimizer step of each contender in alternating rounds, and count its state bytes.

Each process joins a gloo group on loopback with one intra-op thread, builds for each contender
its own copy of the model (the same initial weights on every rank), wraps it, takes one forward
and backward pass on its rank's part of a fixed batch (so the gradients are the synchronised ones
the wrapper makes), and then only steps: a timed step is ``optimizer.step()`` alone, between two
barriers, so each sample is the slower rank's step (the last rank to finish releases the second
barrier). Rank 0 writes the record.
"""

import inspect
import json
import os
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

import adamkit.torch
from adamkit import kernels, specs
from adamkit.benchmarking import contenders
from adamkit.benchmarking.schedule import Contender, time_round_robin
from adamkit.benchmarking.stats import timing_entry
from adamkit.compact import policy

TIMEOUT_SECONDS = 600
SEED = 0
BATCH = 32
TORCH_PATHS = {"torch for-loop": {"foreach": False}, "torch foreach": {"foreach": True}}
LABELS = (contenders.ADAMKIT_TORCH, *TORCH_PATHS, contenders.ADAMKIT_INT8)
# What an optimizer raises when it refuses the wrapper's parameters or the case's options.
REFUSALS = (NotImplementedError, TypeError, ValueError)


def worker(rank, world_size, rendezvous, settings, path):
    """Run every wrapper × rule of ``settings`` (:class:`~adamkit.benchmarking.settings.DistributedSettings`)
    as process ``rank``; rank 0 writes the rows to ``path`` as JSON."""
    torch.set_num_threads(1)
    kernels.set_num_threads(1)
    if os.path.exists("/sys/class/net/lo"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=TIMEOUT_SECONDS),
    )
    rows = []
    for wrapper in settings.wrappers:
        for case in settings.rule_list():
            rows.append(_row(wrapper, case, settings, rank, world_size))
            if rank == 0:
                with open(path, "w") as file:
                    json.dump(rows, file)
    # Leave at once after the last barrier: objects that outlive the group (FSDP2 modules,
    # DTensors) can abort the process in gloo's threads at interpreter shutdown.
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _row(wrapper, case, settings, rank, world_size):
    notes = []
    entrants = _contenders(wrapper, case, settings, rank, world_size, notes)
    timings = time_round_robin(
        [entrant for entrant, _ in entrants], warmup=settings.warmup, steps=settings.steps, clock=_synchronised_clock
    )
    state_bytes = {entrant.label: _gathered(_state_bytes(optimizer)) for entrant, optimizer in entrants}
    entries = {
        label: {**timing_entry(samples), "state_bytes_per_rank": state_bytes[label]}
        for label, samples in timings.samples.items()
    }
    return {
        "wrapper": wrapper,
        "rule": case.name,
        "optimizer": case.optimizer,
        "hyperparameters": case.hyperparameters,
        "contenders": entries,
        "notes": notes
        + [f"{label} not timed under {wrapper}: {_first_line(reason)}" for label, reason in timings.skipped.items()],
    }


def _first_line(text):
    """The first line of an error's text (torch's DTensor errors run to many lines)."""
    return text.splitlines()[0]


def _synchronised_clock():
    dist.barrier()
    return time.perf_counter()


def _contenders(wrapper, case, settings, rank, world_size, notes):
    """``(Contender, optimizer)`` of each label that applies to ``case``, each on its own model;
    ``notes`` get why the others are absent."""
    spec = specs.BY_NAME[case.optimizer]
    made = [(contenders.ADAMKIT_TORCH, getattr(adamkit.torch, case.optimizer), {})]
    torch_class = getattr(torch.optim, case.optimizer, None)
    lacking = [
        key for key in case.hyperparameters if torch_class and key not in inspect.signature(torch_class).parameters
    ]
    for label, flags in TORCH_PATHS.items():
        if torch_class is None:
            notes.append(f"{label} not timed: torch.optim has no {case.optimizer}")
        elif lacking:
            notes.append(f"{label} not timed: torch.optim's {case.optimizer} has no {', '.join(lacking)}")
        else:
            made.append((label, torch_class, flags))
    if policy.takes_compact_state(spec, "int8"):
        made.append((contenders.ADAMKIT_INT8, getattr(adamkit.torch, case.optimizer), {"state_dtype": "int8"}))
    else:
        notes.append(f"{contenders.ADAMKIT_INT8} not timed: {case.optimizer} does not take state_dtype='int8'")
    built = []
    for label, optimizer_class, options in made:
        try:
            model, optimizer = _wrapped(
                wrapper, optimizer_class, {**case.hyperparameters, **options}, settings, world_size
            )
        except REFUSALS as error:
            notes.append(f"{label} not timed under {wrapper}: {_first_line(f'{type(error).__name__}: {error}')}")
            continue
        _backward(model, rank, world_size, settings)
        # Optional: a step that refuses the wrapper's parameters raises on every rank alike in
        # the warm-up, which drops the contender with a note.
        built.append((Contender(label, optimizer.step, optional=True), optimizer))
    return built


def _model(settings):
    torch.manual_seed(SEED)
    layers = []
    for _ in range(settings.depth):
        layers += [torch.nn.Linear(settings.width, settings.width), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def _wrapped(wrapper, optimizer_class, hyper, settings, world_size):
    """The model wrapped by ``wrapper``, and its optimizer."""
    model = _model(settings)
    if wrapper == "FSDP2":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world_size,))
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model, specs.in_train_mode(optimizer_class(model.parameters(), **hyper))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    if wrapper == "ZeRO":
        from torch.distributed.optim import ZeroRedundancyOptimizer

        optimizer = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=optimizer_class, **hyper)
        return ddp, specs.in_train_mode(optimizer)
    return ddp, specs.in_train_mode(optimizer_class(ddp.parameters(), **hyper))


def _backward(model, rank, world_size, settings):
    """One forward and backward pass on this rank's rows of a fixed batch: the gradients every step reads."""
    generator = torch.Generator().manual_seed(SEED + 1)
    inputs = torch.randn(BATCH, settings.width, generator=generator)
    rows = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
    model(inputs[rows]).square().mean().backward()


def _state_bytes(optimizer):
    """The bytes of this rank's optimizer state tensors (a ZeRO optimizer's are its shard's)."""
    inner = getattr(optimizer, "optim", optimizer)
    total = 0
    for state in inner.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                local = value.to_local() if hasattr(value, "to_local") else value
                total += local.numel() * local.element_size()
    return total


def _gathered(value):
    """``value`` of every rank, in rank order."""
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values
