"""diagnose() reads the torch and NumPy front ends alike and leaves them bitwise unchanged."""

import numpy as np
import pytest

import adamkit.numpy
from adamkit.diagnostics import diagnose
from tests.cases import CASES, gradients, group_order, initial_params, param_groups

torch = pytest.importorskip("torch")
import adamkit.torch  # noqa: E402

STEPS = 4
NAMES = ("Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad", "RMSprop", "NAdam", "RAdam", "AdaBelief", "Adafactor", "LAMB", "Lion")
ONE_CASE_EACH = {name: next(case for case in CASES[::-1] if case.optimizer == name) for name in NAMES}


def numpy_optimizer(case):
    params = initial_params("float64")
    opt = getattr(adamkit.numpy, case.optimizer)(param_groups(case, params), **case.hyper)
    for grads in gradients("float64", STEPS):
        opt.step(group_order(grads))
    return opt


def torch_optimizer(case, dtype=torch.float64):
    params = [torch.nn.Parameter(torch.from_numpy(p).to(dtype)) for p in initial_params("float64")]
    opt = getattr(adamkit.torch, case.optimizer)(param_groups(case, params), **case.hyper)
    ordered = [p for group in opt.param_groups for p in group["params"]]
    for grads in gradients("float64", STEPS):
        for param, grad in zip(ordered, group_order(grads)):
            param.grad = torch.from_numpy(grad).to(dtype)
        opt.step()
    return opt


def snapshot(opt):
    """Every byte of the parameters and state, and the state's keys, in a comparable form."""
    def raw(value):
        if torch.is_tensor(value):
            value = torch.view_as_real(value.detach()) if value.is_complex() else value.detach()
            return value.numpy().tobytes()
        return np.asarray(value).tobytes()

    params = [p for group in opt.param_groups for p in group["params"]]
    states = opt.state if isinstance(opt.state, list) else [opt.state.get(p, {}) for p in params]
    return (
        [raw(p) for p in params],
        [{key: raw(value) for key, value in state.items()} for state in states],
        len(opt.state),
        [{key: value for key, value in group.items() if key != "params"} for group in opt.param_groups],
    )


def same(first, second):
    assert first.keys() == second.keys()
    for key, value in first.items():
        other = second[key]
        if isinstance(value, dict):
            assert value.keys() == other.keys()
            for quantile, number in value.items():
                assert other[quantile] == pytest.approx(number, rel=1e-12, abs=1e-300), (key, quantile)
        elif isinstance(value, float):
            assert other == pytest.approx(value, rel=1e-12, abs=1e-300), key
        else:
            assert other == value, key


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_torch_and_numpy_front_ends_give_the_same_diagnostics(case):
    from_numpy = [group.as_dict() for group in diagnose(numpy_optimizer(case))]
    from_torch = [group.as_dict() for group in diagnose(torch_optimizer(case))]
    assert len(from_numpy) == len(from_torch) == 2
    for first, second in zip(from_numpy, from_torch):
        same(first, second)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("front_end", ["numpy", "torch"])
def test_diagnose_changes_nothing_bitwise(name, front_end):
    case = ONE_CASE_EACH[name]
    opt = numpy_optimizer(case) if front_end == "numpy" else torch_optimizer(case, torch.float32)
    before = snapshot(opt)
    diagnose(opt)
    diagnose(opt)
    assert snapshot(opt) == before


def test_complex_parameters_are_read_as_real_pairs_and_left_unchanged():
    values = torch.randn(17, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    grads = [torch.randn(17, dtype=torch.complex128, generator=torch.Generator().manual_seed(s))
             for s in range(1, 4)]
    complex_param = torch.nn.Parameter(values.clone())
    real_param = torch.nn.Parameter(torch.view_as_real(values.clone()).clone())
    complex_opt = adamkit.torch.Adam([complex_param], lr=0.01, amsgrad=True)
    real_opt = adamkit.torch.Adam([real_param], lr=0.01, amsgrad=True)
    for grad in grads:
        complex_param.grad, real_param.grad = grad, torch.view_as_real(grad).clone()
        complex_opt.step()
        real_opt.step()
    before = snapshot(complex_opt)
    [from_complex] = diagnose(complex_opt)
    [from_real] = diagnose(real_opt)
    assert snapshot(complex_opt) == before
    assert from_complex.elements == 34
    same(from_complex.as_dict(), from_real.as_dict())


def test_stepping_never_runs_the_diagnostics(monkeypatch):
    """Nothing is hooked into step(): the diagnostics cost nothing unless diagnose() is called."""
    from adamkit.diagnostics import reading, summary

    def fail(*args, **kwargs):
        raise AssertionError("diagnostics ran during a step")

    monkeypatch.setattr(summary, "read_groups", fail)
    monkeypatch.setattr(reading, "as_float64", fail)
    for case in ONE_CASE_EACH.values():
        numpy_optimizer(case)
        opt = torch_optimizer(case, torch.float32)
        assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks


@pytest.mark.parametrize("name, lr", [("Adam", 1e-3), ("Adamax", 2e-3), ("Adadelta", 1.0)])
def test_eight_bit_state_is_decoded_before_it_is_read(name, lr):
    """With state_dtype="int8" the moments are stored as codes and scales; diagnose() decodes
    them, so its numbers agree with float32 state to within the codec's error."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(70, 80, generator=generator)
    params = [torch.nn.Parameter(start.clone()) for _ in range(2)]
    try:
        eight_bit = getattr(adamkit.torch, name)([params[0]], lr=lr, state_dtype="int8")
    except (TypeError, ValueError, RuntimeError) as error:
        pytest.skip(f"8-bit optimizer state is not available: {error}")
    full = getattr(adamkit.torch, name)([params[1]], lr=lr)
    for _ in range(5):
        grad = torch.randn(70, 80, generator=generator) * torch.rand(70, 1, generator=generator)
        for param in params:
            param.grad = grad.clone()
        eight_bit.step()
        full.step()
    if not any(key.endswith("_absmax") for key in eight_bit.state[params[0]]):
        pytest.skip("the 8-bit kernel was not built, so the state stayed float32")
    before = snapshot(eight_bit)
    [coded] = diagnose(eight_bit)
    [plain] = diagnose(full)
    assert snapshot(eight_bit) == before
    assert coded.elements == plain.elements == 5600
    for level in ("p25", "median", "p75"):
        assert getattr(coded.step_size, level) == pytest.approx(getattr(plain.step_size, level), rel=0.02)
    if plain.update_to_weight is None:  # Adadelta's state does not determine its last update
        assert coded.update_to_weight is None
    else:
        assert coded.update_to_weight == pytest.approx(plain.update_to_weight, rel=0.02)
    assert coded.nonfinite == 0.0


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_numpy_compact_state_is_read_as_its_float32_values(state_dtype):
    """A NumPy optimizer's 8-bit codes and bfloat16 bit patterns are decoded: diagnose() reports
    exactly what it reports for a float32 optimizer holding the exported (decoded) state."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(shape).astype(np.float32) for shape in ((70, 80), (17,))]
    compact = adamkit.numpy.AdamW(params, lr=1e-3, amsgrad=True, state_dtype=state_dtype)
    for _ in range(STEPS):
        compact.step([rng.standard_normal(p.shape).astype(np.float32) for p in params])
    if compact.state[0].get("exp_avg", np.zeros(0, np.uint16)).dtype == np.float32:
        pytest.skip("the kernels were not built, so the state stayed float32")
    plain = adamkit.numpy.AdamW([p.copy() for p in params], lr=1e-3, amsgrad=True)
    plain.load_state_dict(compact.export_state_dict())
    before = snapshot(compact)
    [coded] = diagnose(compact)
    [decoded] = diagnose(plain)
    assert snapshot(compact) == before
    assert coded.as_dict() == decoded.as_dict()
    assert coded.nonfinite == 0.0


@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_bfloat16_parameters_read_as_their_float32_values(name):
    """bfloat16 has no NumPy dtype; diagnose reads it as float32 (exact) and reports what it
    reports for float32 parameters holding the same values."""
    case = ONE_CASE_EACH[name]
    bf16 = torch_optimizer(case, torch.bfloat16)
    same = torch_optimizer(case, torch.float32)
    with torch.no_grad():
        for got, want in zip(
            (p for g in same.param_groups for p in g["params"]), (p for g in bf16.param_groups for p in g["params"])
        ):
            got.copy_(want.float())
            for key, value in bf16.state[want].items():
                if torch.is_tensor(value) and key in same.state[got]:
                    same.state[got][key] = value.float() if value.is_floating_point() else value
    assert [r.elements for r in diagnose(bf16)] == [r.elements for r in diagnose(same)]
    assert str(diagnose(bf16)) == str(diagnose(same))
