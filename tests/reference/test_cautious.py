"""``cautious=True`` of Adam, AdamW, Lion and AdEMAMix: the rules against the float64 transcription
(tests/reference/cautious.py), the authors' formulation (github.com/kyleliang919/C-Optim, restated
here in torch operations) and pytorch_optimizer's ``cautious`` options, 60 float64 steps on the
shared sizes (1, 7, 17, 4097) in two groups.

Where they differ: the authors' ``c_adamw.py`` rescales by 1/max(mean(φ), 1e-3), which adamkit
follows for every rule; their ``c_lion.py`` and pytorch_optimizer rescale by n/(Σφ + 1), and
pytorch_optimizer's AdEMAMix masks only the fast average. Those tests pin the difference: the
packages equal the transcription with their convention, and not adamkit's rule.
"""

import numpy as np
import pytest
import torch

from adamkit.rules._spec import Spec
from adamkit.specs import BY_NAME
from tests.cases import GROUP_OF_SIZE, gradients, initial_params
from tests.reference import cautious as transcription
from tests.reference._ademamix_packages import assert_close
from tests.rules._drive import group_hyperparameters, run_rule

STEPS = 60
# Non-default hyperparameters of each rule's first group, and the second group's own.
SETTINGS = {
    "Adam": (
        {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "maximize": True},
        {"lr": 3e-3, "weight_decay": 0.0},
    ),
    "AdamW": ({"lr": 1e-2, "betas": (0.85, 0.995), "weight_decay": 0.05}, {"eps": 1e-3, "maximize": True}),
    "Lion": (
        {"lr": 1e-2, "betas": (0.8, 0.95), "weight_decay": 0.1},
        {"lr": 3e-3, "decoupled_weight_decay": False, "maximize": True},
    ),
    "AdEMAMix": (
        {"lr": 1e-2, "betas": (0.8, 0.99, 0.999), "alpha": 3.0, "eps": 1e-6, "weight_decay": 0.1},
        {"alpha": 8.0, "decoupled_weight_decay": False, "maximize": True},
    ),
}


def problem():
    return initial_params("float64"), gradients("float64", steps=STEPS)


def hyperparameters(name, group, **extra):
    first, second = SETTINGS[name]
    return {**first, **(second if group else {}), **extra}


def rule_run(name, **extra):
    """The rule's final ``(param, state)`` of every parameter, with ``cautious=True``."""
    params, grads = problem()
    return [
        run_rule(
            name,
            group_hyperparameters(name, hyperparameters(name, group, cautious=True, **extra)),
            param,
            [step[index] for step in grads],
        )
        for index, (param, group) in enumerate(zip(params, GROUP_OF_SIZE))
    ]


def transcribed(name, **extra):
    params, grads = problem()
    defaults = {
        key: value
        for key, value in BY_NAME[name].defaults.items()
        if key not in ("amsgrad", "cautious", "t_alpha_beta3")
    }
    return [
        transcription.TRANSCRIPTIONS[name](
            param, [step[index] for step in grads], **{**defaults, **hyperparameters(name, group), **extra}
        )
        for index, (param, group) in enumerate(zip(params, GROUP_OF_SIZE))
    ]


def assert_runs_close(actual, expected):
    for index, ((param, state), (param_expected, state_expected)) in enumerate(zip(actual, expected, strict=True)):
        assert_close(param, param_expected, f"param {index}")
        for key, value in state_expected.items():
            assert_close(state[key], value, f"{key} {index}")


@pytest.mark.parametrize("name", list(SETTINGS))
def test_rule_equals_the_transcription(name):
    assert_runs_close(rule_run(name), transcribed(name))


def test_the_mask_changes_the_trajectory():
    """The option is not ignored: without it the rule leaves the transcription."""
    params, grads = problem()
    plain = run_rule("Lion", group_hyperparameters("Lion", SETTINGS["Lion"][0]), params[3], [g[3] for g in grads])
    cautious = transcribed("Lion")[3]
    assert np.max(np.abs(plain[0] - cautious[0])) > 1e-3


def authors_adamw(params, grads, hyper):
    """The authors' single-tensor ``AdamW.step`` (c_adamw.py, bias correction on): θ decays first,
    the moments update, then φ = 1[m ⊙ g > 0] rescaled by its clamped mean, and
    θ ← θ − γ√bc2/bc1 · (m ⊙ φ)/(√v + ε)."""
    beta1, beta2 = hyper["betas"]
    lr, eps, decay = hyper["lr"], hyper["eps"], hyper["weight_decay"]
    finals = []
    for index, param in enumerate(params):
        p = torch.tensor(param)
        m, v = torch.zeros_like(p), torch.zeros_like(p)
        for t, step in enumerate(grads, start=1):
            g = torch.tensor(step[index])
            p.add_(p, alpha=-lr * decay)
            m.mul_(beta1).add_(g, alpha=1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = v.sqrt().add_(eps)
            step_size = lr * (1.0 - beta2**t) ** 0.5 / (1.0 - beta1**t)
            mask = (m * g > 0).to(g.dtype)
            mask.div_(mask.mean().clamp_(min=1e-3))
            p.add_((m * mask) / denom, alpha=-step_size)
        finals.append((p.numpy(), {"exp_avg": m.numpy(), "exp_avg_sq": v.numpy()}))
    return finals


def test_adamw_equals_the_authors():
    """The authors' AdamW is the ε̂ form (ε added to the uncorrected √v): adamkit's AdamW with
    ``eps_hat=True``."""
    hyper = {"lr": 1e-2, "betas": (0.85, 0.995), "eps": 1e-6, "weight_decay": 0.05}
    params, grads = problem()
    ours = [
        run_rule(
            "AdamW",
            group_hyperparameters("AdamW", hyper, {"cautious": True, "eps_hat": True}),
            param,
            [step[index] for step in grads],
        )
        for index, param in enumerate(params)
    ]
    assert_runs_close(ours, authors_adamw(params, grads, hyper))


def authors_lion(params, grads, hyper):
    """The authors' c_lion.py ``update_fn``: decay, φ = 1[sign(c) ⊙ g > 0] rescaled by n/(Σφ + 1)."""
    beta1, beta2 = hyper["betas"]
    lr, decay = hyper["lr"], hyper["weight_decay"]
    finals = []
    for index, param in enumerate(params):
        p = torch.tensor(param)
        m = torch.zeros_like(p)
        for step in grads:
            g = torch.tensor(step[index])
            p.mul_(1 - lr * decay)
            update = m.clone().mul_(beta1).add(g, alpha=1 - beta1).sign_()
            mask = (update * g > 0).to(g.dtype)
            mask = mask * (mask.numel() / (mask.sum() + 1))
            p.add_(update * mask, alpha=-lr)
            m.mul_(beta2).add_(g, alpha=1 - beta2)
        finals.append((p.numpy(), {"exp_avg": m.numpy()}))
    return finals


def test_lion_the_authors_rescale_by_count_plus_one():
    """c_lion.py keeps the older rescale n/(Σφ + 1): it equals the transcription with it, and
    differs from adamkit's rule, which follows c_adamw.py's 1/max(mean(φ), 1e-3)."""
    hyper = SETTINGS["Lion"][0]
    params, grads = problem()
    theirs = authors_lion(params, grads, hyper)
    assert_runs_close(
        theirs,
        [transcription.lion(p, [s[i] for s in grads], **hyper, rescale="count_plus_one") for i, p in enumerate(params)],
    )
    ours = [
        run_rule("Lion", group_hyperparameters("Lion", hyper, {"cautious": True}), p, [s[i] for s in grads])
        for i, p in enumerate(params)
    ]
    assert np.max(np.abs(ours[3][0] - theirs[3][0])) > 1e-6


def run_package(make, name):
    """60 steps of a pytorch_optimizer optimizer on the two groups of ``name``'s settings."""
    params, grads = problem()
    tensors = [torch.tensor(param) for param in params]
    groups = []
    for group in (0, 1):
        hyper = hyperparameters(name, group)
        hyper["weight_decouple"] = hyper.pop("decoupled_weight_decay", True)
        hyper.pop("maximize", None)
        groups.append({"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == group], **hyper})
    optimizer = make(groups)
    for step in grads:
        for tensor, grad, group in zip(tensors, step, GROUP_OF_SIZE):
            # pytorch_optimizer's maximize is per optimizer: the second group's is given negated.
            negate = hyperparameters(name, group).get("maximize", False)
            tensor.grad = torch.tensor(-grad if negate else grad)
        optimizer.step()
    return [t.numpy() for t in tensors]


@pytest.mark.parametrize(
    ("name", "package_class", "convention"),
    [
        ("Lion", "Lion", {"rescale": "count_plus_one"}),
        ("AdEMAMix", "AdEMAMix", {"rescale": "count_plus_one", "masked": "fast"}),
    ],
)
def test_pytorch_optimizer_follows_its_own_convention(name, package_class, convention):
    """pytorch_optimizer's ``cautious=True`` is the transcription with its conventions (the
    rescale n/(Σφ + 1); AdEMAMix's fast average masked alone), not adamkit's rule."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    package = getattr(pytorch_optimizer, package_class)
    theirs = run_package(lambda groups: package(groups, cautious=True, foreach=False), name)
    for ours, (expected, _) in zip(theirs, transcribed(name, **convention)):
        assert_close(ours, expected, name)
    assert np.max(np.abs(theirs[3] - rule_run(name)[3][0])) > 1e-6


@pytest.mark.parametrize("name", list(SETTINGS))
def test_cautious_is_checked_as_a_bool(name):
    spec: Spec = BY_NAME[name]
    assert spec.defaults["cautious"] is False
    with pytest.raises(TypeError, match=r"cautious must be True or False, got 1"):
        spec.validate({"cautious": 1})
