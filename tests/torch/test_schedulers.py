"""Every torch LR scheduler drives adamkit's optimizers exactly as it drives torch.optim's."""

import pytest
from torch.optim import lr_scheduler

from tests.cases import gradients, initial_params
from tests.torch._compare import Agreement, both, make_params, set_grads

STEPS = 24
# ReduceLROnPlateau watches this metric: it improves, stalls, improves, then stalls for good.
PLATEAU_METRIC = [1.0, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7] + [0.7] * (STEPS - 10)

ADAM = ("Adam", dict(lr=1e-2, weight_decay=0.05))
ADAMW = ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True))
SGD_MOMENTUM = ("SGD", dict(lr=1e-2, momentum=0.9))
RMSPROP = ("RMSprop", dict(lr=1e-2, centered=True))


def _sequential(optimizer):
    return lr_scheduler.SequentialLR(
        optimizer,
        [
            lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=4),
            lr_scheduler.ExponentialLR(optimizer, 0.8),
        ],
        milestones=[5],
    )


def _chained(optimizer):
    return lr_scheduler.ChainedScheduler(
        [lr_scheduler.ExponentialLR(optimizer, 0.9), lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)]
    )


SCHEDULERS = {
    "StepLR": (ADAM, lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "MultiStepLR": (RMSPROP, lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3)),
    "ExponentialLR": (ADAMW, lambda o: lr_scheduler.ExponentialLR(o, gamma=0.85)),
    "CosineAnnealingLR": (ADAM, lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=1e-4)),
    "CosineAnnealingWarmRestarts": (
        SGD_MOMENTUM,
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-4),
    ),
    "LambdaLR": (ADAMW, lambda o: lr_scheduler.LambdaLR(o, lr_lambda=lambda epoch: 1 / (1 + 0.5 * epoch))),
    "LinearLR": (ADAM, lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6)),
    "ConstantLR": (SGD_MOMENTUM, lambda o: lr_scheduler.ConstantLR(o, factor=0.3, total_iters=5)),
    "PolynomialLR": (ADAM, lambda o: lr_scheduler.PolynomialLR(o, total_iters=12, power=2.0)),
    "CyclicLR-SGD-momentum": (
        SGD_MOMENTUM,
        lambda o: lr_scheduler.CyclicLR(
            o, base_lr=1e-3, max_lr=0.1, step_size_up=3, base_momentum=0.7, max_momentum=0.95
        ),
    ),
    "CyclicLR-Adam": (
        ADAM,
        lambda o: lr_scheduler.CyclicLR(
            o, base_lr=1e-3, max_lr=0.05, step_size_up=4, mode="triangular2", cycle_momentum=False
        ),
    ),
    "OneCycleLR-Adam": (ADAM, lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=STEPS)),
    "OneCycleLR-AdamW": (
        ADAMW,
        lambda o: lr_scheduler.OneCycleLR(
            o, max_lr=0.05, total_steps=STEPS, base_momentum=0.6, max_momentum=0.9
        ),
    ),
    "OneCycleLR-SGD": (
        SGD_MOMENTUM,
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=STEPS, anneal_strategy="linear"),
    ),
    "ReduceLROnPlateau": (ADAM, lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1)),
    "SequentialLR": (RMSPROP, _sequential),
    "ChainedScheduler": (ADAMW, _chained),
}


def _hyperparameters(optimizer):
    """What a scheduler may change, per group: the lr and the momentum or betas."""
    return [(group["lr"], group.get("momentum"), group.get("betas")) for group in optimizer.param_groups]


@pytest.mark.parametrize("label", list(SCHEDULERS))
def test_scheduler_gives_the_same_trajectory_as_on_torch_optim(label):
    (name, hyper), make_scheduler = SCHEDULERS[label]
    torch_class, adamkit_class = both(name)
    arrays = initial_params("float64")
    runs = []
    for cls in (torch_class, adamkit_class):
        params = make_params(arrays)
        optimizer = cls([{"params": params[:2]}, {"params": params[2:], "lr": hyper["lr"] / 2}], **hyper)
        scheduler = make_scheduler(optimizer)
        history = []
        for step, step_grads in enumerate(gradients("float64", steps=STEPS)):
            set_grads(params, step_grads)
            optimizer.step()
            if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                scheduler.step(PLATEAU_METRIC[step])
            else:
                scheduler.step()
            history.append((_hyperparameters(optimizer), [p.detach().clone() for p in params]))
        runs.append((history, optimizer))
    (torch_history, torch_optimizer), (adamkit_history, adamkit_optimizer) = runs

    agreement = Agreement(1e-12)
    for step, ((ours, our_params), (theirs, their_params)) in enumerate(zip(adamkit_history, torch_history)):
        assert ours == theirs, f"step {step}: the scheduler set {ours}, on torch.optim {theirs}"
        agreement.check_all(f"step {step} param", our_params, their_params)
    agreement.check_states(adamkit_optimizer, torch_optimizer)
    # The scheduler did change the hyperparameters, so the comparison above means something.
    assert len({str(hyper) for hyper, _ in torch_history}) > 1
