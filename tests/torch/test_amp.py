"""torch.amp.GradScaler on the CPU drives adamkit's optimizers as it drives torch.optim's:
float16 autocast losses are scaled, gradients unscaled, and steps with inf gradients skipped."""

import pytest
import torch

from tests.torch._compare import Agreement, assert_unchanged, both, snapshot

STEPS = 14


def _data():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(32, 8, generator=generator)
    targets = torch.randn(32, 1, generator=generator)
    return inputs, targets


def _model():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(8, 17), torch.nn.Tanh(), torch.nn.Linear(17, 1))


def _train(cls, hyper, on_skipped_step):
    inputs, targets = _data()
    model = _model()
    optimizer = cls(model.parameters(), **hyper)
    # A scale of 2**18 overflows float16 in the backward pass, so the first steps have inf
    # gradients and are skipped; the scaler then backs off, and grows again every 4 steps.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**18, growth_interval=4)
    history = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            hidden = model[0](inputs)
            loss = torch.nn.functional.mse_loss(model[2](model[1](hidden)), targets)
        assert hidden.dtype == torch.float16
        scaler.scale(loss).backward()
        finite = all(torch.isfinite(p.grad).all() for p in model.parameters())
        before = snapshot(optimizer)
        scaler.step(optimizer)
        scaler.update()
        if not finite:
            on_skipped_step(optimizer, before)
        history.append((finite, scaler.get_scale(), [p.detach().clone() for p in model.parameters()]))
    return history, optimizer


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("Adam", dict(lr=1e-2, weight_decay=0.01)),
        ("AdamW", dict(lr=1e-2, amsgrad=True)),
        ("SGD", dict(lr=1e-2, momentum=0.9)),
        ("RMSprop", dict(lr=1e-3, centered=True)),
    ],
)
def test_grad_scaler_gives_torchs_trajectory_and_skips_inf_steps(name, hyper):
    torch_class, adamkit_class = both(name)
    torch_history, torch_optimizer = _train(torch_class, hyper, lambda opt, before: None)
    skipped = []

    def check_skipped(optimizer, before):
        assert_unchanged(optimizer, before)
        skipped.append(True)

    adamkit_history, adamkit_optimizer = _train(adamkit_class, hyper, check_skipped)

    assert 1 <= len(skipped) < STEPS - 4, "the test needs both skipped and taken steps"
    agreement = Agreement(1e-6)
    for step, (ours, theirs) in enumerate(zip(adamkit_history, torch_history)):
        assert ours[:2] == theirs[:2], f"step {step}: finite grads / scale differ"
        agreement.check_all(f"step {step} param", ours[2], theirs[2])
    agreement.check_states(adamkit_optimizer, torch_optimizer)
