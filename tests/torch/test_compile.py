"""``torch.compile`` and adamkit's optimizers.

A compiled ``opt.step()`` costs one graph break and no graph (the step runs eagerly,
:mod:`adamkit.torch._untraced`), steps bitwise as the eager step does, runs the eager step's
checks every step, recompiles nothing when hyperparameters change, and raises Dynamo's
``Unsupported`` under ``fullgraph=True``. A compiled model trains with adamkit.
"""

import copy

import pytest
import torch
import torch._dynamo
from torch._dynamo.testing import CompileCounter
from torch._dynamo.utils import counters

import adamkit.torch
from adamkit.torch import MismatchError
from adamkit.torch._untraced import REASON
from tests.torch._compare import OPTIMIZERS, RICH, assert_bitwise_equal, assert_unchanged, snapshot

SIZES = ((1, 7), (17, 4097))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def twins(name, options=None, seed=0):
    """Two optimizers ``name`` over equal parameters in two groups (the second with its own
    learning rate), their gradients equal too."""
    generator = torch.Generator().manual_seed(seed)
    options = RICH[name] if options is None else options
    made = []
    for _ in range(2):
        generator.manual_seed(seed)
        groups = [[torch.nn.Parameter(torch.randn(size, generator=generator)) for size in sizes] for sizes in SIZES]
        for param in [p for group in groups for p in group]:
            param.grad = torch.randn(param.shape, generator=generator)
        param_groups = [{"params": groups[0]}, {"params": groups[1], "lr": options["lr"] / 3}]
        made.append(getattr(adamkit.torch, name)(param_groups, **options))
    return made


def compiled_step(optimizer, backend):
    @torch.compile(backend=backend)
    def step():
        optimizer.step()

    return step


def graph_breaks():
    return sum(counters["graph_break"].values())


def step_breaks():
    """The graph breaks at adamkit's step."""
    return sum(count for reason, count in counters["graph_break"].items() if REASON in reason)


def assert_same_run(compiled, eager):
    for index, (ours, theirs) in enumerate(zip(compiled.param_groups, eager.param_groups)):
        for param, twin in zip(ours["params"], theirs["params"]):
            assert_bitwise_equal(param, twin, f"group {index} parameter")
            for key, value in eager.state[twin].items():
                assert_bitwise_equal(compiled.state[param][key], value, f"group {index} state {key!r}")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_compiled_step_is_one_graph_break_and_steps_bitwise_as_eager(name):
    compiled, eager = twins(name)
    backend = CompileCounter()
    step = compiled_step(compiled, backend)
    for _ in range(4):
        step()
        eager.step()
    assert_same_run(compiled, eager)
    assert graph_breaks() == step_breaks() == 1
    assert backend.frame_count == 0
    assert backend.op_count == 0


@pytest.mark.parametrize("lr_type", [float, torch.tensor])
def test_hyperparameters_changed_each_step_recompile_nothing(lr_type):
    compiled, eager = twins("AdamW", dict(lr=lr_type(0.02), betas=(0.8, 0.95), weight_decay=0.1))
    step = compiled_step(compiled, CompileCounter())
    schedulers = [torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.9) for optimizer in (compiled, eager)]
    step()
    eager.step()
    frames = dict(counters["frames"])
    for index in range(12):
        for optimizer, scheduler in zip((compiled, eager), schedulers):
            scheduler.step()
            optimizer.param_groups[1]["betas"] = (0.8 + index / 100, 0.95)
            optimizer.param_groups[0]["weight_decay"] = 0.1 + index / 100
        step()
        eager.step()
    assert_same_run(compiled, eager)
    assert dict(counters["frames"]) == frames
    assert graph_breaks() == 1


def test_the_step_checks_run_under_compile_every_step():
    compiled, _ = twins("Adam")
    step = compiled_step(compiled, "eager")
    step()
    step()
    param = compiled.param_groups[1]["params"][0]
    param.data = torch.randn(200)
    param.grad = torch.randn(200)
    before = snapshot(compiled)
    with pytest.raises(MismatchError, match=r"param_groups\[1\]\['params'\]\[0\]"):
        step()
    assert_unchanged(compiled, before)


def test_step_hooks_run_at_each_compiled_step():
    compiled, _ = twins("SGD")
    calls = []
    compiled.register_step_pre_hook(lambda optimizer, args, kwargs: calls.append("pre"))
    compiled.register_step_post_hook(lambda optimizer, args, kwargs: calls.append("post"))
    step = compiled_step(compiled, "eager")
    for _ in range(3):
        step()
    assert calls == ["pre", "post"] * 3
    assert graph_breaks() == 1


def test_fullgraph_raises_dynamos_unsupported_and_changes_nothing():
    compiled, _ = twins("Adam")
    before = snapshot(compiled)

    @torch.compile(backend="eager", fullgraph=True)
    def step():
        compiled.step()

    with pytest.raises(torch._dynamo.exc.Unsupported, match="adamkit's step runs eagerly"):
        step()
    assert_unchanged(compiled, before)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(7, 17)
        self.out = torch.nn.Linear(17, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x))).square().mean()


def _batches(count):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(32, 7, generator=generator) for _ in range(count)]


def test_a_training_step_compiled_whole_breaks_only_at_the_step():
    torch.manual_seed(0)
    model = _Net()
    twin = copy.deepcopy(model)
    optimizer = adamkit.torch.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    twin_optimizer = adamkit.torch.AdamW(twin.parameters(), lr=0.01, weight_decay=0.1)

    @torch.compile(backend="eager")
    def train_step(x):
        optimizer.zero_grad()
        loss = model(x)
        loss.backward()
        optimizer.step()
        return loss

    frames = None
    for x in _batches(6):
        train_step(x)
        frames = frames or dict(counters["frames"])
        twin_optimizer.zero_grad()
        twin(x).backward()
        twin_optimizer.step()
    assert dict(counters["frames"]) == frames
    assert step_breaks() == 1  # zero_grad and backward break too, as with torch.optim
    for param, twin_param in zip(model.parameters(), twin.parameters()):
        assert_bitwise_equal(param, twin_param)


def test_a_compiled_model_trains_with_adamkit():
    torch.manual_seed(0)
    eager_model = _Net()
    model = torch.compile(copy.deepcopy(eager_model))
    initial = [param.detach().clone() for param in eager_model.parameters()]
    optimizers = [adamkit.torch.Adam(m.parameters(), lr=0.01, amsgrad=True) for m in (model, eager_model)]
    for x in _batches(6):
        for m, optimizer in zip((model, eager_model), optimizers):
            optimizer.zero_grad()
            m(x).backward()
            optimizer.step()
    assert counters["stats"]["unique_graphs"] == 1  # the model's, never recompiled
    for param, eager_param, start in zip(model.parameters(), eager_model.parameters(), initial):
        assert not torch.equal(param, start)
        torch.testing.assert_close(param, eager_param, rtol=1e-5, atol=1e-6)
    x = _batches(7)[-1]
    torch.testing.assert_close(model(x), eager_model(x), rtol=1e-5, atol=1e-6)

