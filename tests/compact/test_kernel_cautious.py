"""cautious=True on 8-bit state (Adam, AdamW, AdEMAMix, Lion): the kernel's two passes compute
exactly decode -> the cautious rule in float32 (the kept fraction over the whole tensor) ->
encode, bit for bit, on every instruction set and thread count, in one call over many tensors,
in the row layout and for bfloat16 parameters; and both front ends step so."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import adamkit.numpy as akn  # noqa: E402
import adamkit.torch as akt  # noqa: E402
from adamkit.compact import bfloat16  # noqa: E402
from adamkit.kernels import native, quantized  # noqa: E402
from adamkit.kernels.quantized import codes_key, scales_key  # noqa: E402
from tests.compact.test_kernel import SPECS, assert_same_state, case_id, copied, encode, initial_state  # noqa: E402
from tests.compact.test_kernel import reference_step  # noqa: E402
from tests.compact.test_kernel_bf16 import reference_bf16_step  # noqa: E402
from tests.kernels.trajectories import tensor_count  # noqa: E402

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")

# Each rule that takes cautious=True with maximize and each form of decay (AMSGrad for Adam).
CASES = [
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True, cautious=True)),
    ("Adam", dict(lr=3e-3, weight_decay=0.05, decoupled_weight_decay=True, cautious=True)),
    ("AdEMAMix", dict(lr=5e-3, eps=1e-6, weight_decay=0.1, decoupled_weight_decay=False, maximize=True, cautious=True)),
    (
        "AdEMAMix",
        dict(lr=5e-3, betas=(0.8, 0.99, 0.999), alpha=3.0, t_alpha_beta3=5.0, weight_decay=0.2, cautious=True),
    ),
    (
        "Lion",
        dict(
            lr=3e-3, betas=(0.95, 0.98), weight_decay=0.05, decoupled_weight_decay=False, maximize=True, cautious=True
        ),
    ),
    ("Lion", dict(lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1, cautious=True)),
]
SIZES = (4097, 1, 7, 17, 0, 70000)


def start(name, hyper, sizes, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    states = [initial_state(name, hyper, n, rng) for n in sizes]
    return rng, params, states


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_one_call_over_many_tensors_equals_decode_cautious_rule_encode_on_every_thread_count(case, isa):
    name, hyper = case
    rng, params, states = start(name, hyper, SIZES, seed=len(case_id(case)))
    expected = [p.copy() for p in params], [copied(s) for s in states]
    stepped = {threads: ([p.copy() for p in params], [copied(s) for s in states]) for threads in (1, 3)}
    for step in (1, 2, 3):
        # Gradients of either sign about the momentum's, so that masks keep some and drop others.
        grads = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 0, n)).astype(np.float32) for n in SIZES]
        counts = [tensor_count(SPECS[name], hyper, step)] * len(SIZES)
        for threads, (ps, ss) in stepped.items():
            quantized.update(SPECS[name], ps, grads, ss, counts, isa=isa, num_threads=threads, **hyper)
        for index, grad in enumerate(grads):
            new = reference_step(name, expected[0][index], grad, expected[1][index], step, hyper)
            expected[0][index], expected[1][index] = new
        for threads, (ps, ss) in stepped.items():
            for param, state, expected_param, expected_state in zip(ps, ss, *expected):
                np.testing.assert_array_equal(param, expected_param, err_msg=f"{threads} threads")
                assert_same_state(state, expected_state)


@pytest.mark.parametrize("case", CASES[::2], ids=case_id)
def test_the_mask_is_active_the_row_layout_counts_over_the_whole_tensor(case):
    """In the row layout (scales per row) the fraction is still over the whole tensor, and the
    step differs from the plain one."""
    name, hyper = case
    rng = np.random.default_rng(5)
    shape = (3, 300)
    param = rng.standard_normal(shape).astype(np.float32)
    state = initial_state(name, hyper, shape, rng, rows=True)
    plain_param, plain_state = param.copy(), copied(state)
    expected_param, expected_state = param.copy(), copied(state)
    for step in (1, 2):
        grad = rng.standard_normal(shape).astype(np.float32)
        count = tensor_count(SPECS[name], hyper, step)
        quantized.update(SPECS[name], [param], [grad], [state], [count], **hyper)
        plain = {**hyper, "cautious": False}
        quantized.update(SPECS[name], [plain_param], [grad], [plain_state], [count], **plain)
        expected_param, expected_state = reference_step(name, expected_param, grad, expected_state, step, hyper)
        np.testing.assert_array_equal(param, expected_param)
        assert_same_state(state, expected_state)
    assert not np.array_equal(param, plain_param)


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", [CASES[0], CASES[4]], ids=case_id)
def test_bfloat16_parameters_with_kahan_compensation(case, isa):
    name, hyper = case
    rng = np.random.default_rng(11)
    shapes = ((4097,), (3, 1500))
    params = [bfloat16.rounded(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
    compensations = [np.zeros(shape, np.uint16) for shape in shapes]
    states = [initial_state(name, hyper, shape, rng, rows=len(shape) == 2) for shape in shapes]
    expected = [
        list(column)
        for column in zip(*[(p.copy(), c.copy(), copied(s)) for p, c, s in zip(params, compensations, states)])
    ]
    for step in (1, 2):
        grads = [bfloat16.rounded(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
        count = tensor_count(SPECS[name], hyper, step)
        quantized.update(
            SPECS[name],
            params,
            grads,
            states,
            [count] * 2,
            compensations=compensations,
            isa=isa,
            num_threads=2,
            **hyper,
        )
        for index, grad in enumerate(grads):
            new = reference_bf16_step(
                name, expected[0][index], expected[1][index], grad, expected[2][index], step, hyper
            )
            expected[0][index], expected[1][index], expected[2][index] = new
        for param, compensation, state, *wanted in zip(params, compensations, states, *expected):
            np.testing.assert_array_equal(param, wanted[0])
            np.testing.assert_array_equal(compensation, wanted[1])
            assert_same_state(state, wanted[2])


@pytest.mark.parametrize("optimizer", ["AdamW", "Lion"])
def test_both_front_ends_take_cautious_with_int8_state_and_step_as_the_reference(optimizer):
    """Two groups; a parameter large enough for 8-bit state, whose steps are decode -> the
    cautious rule -> encode from zero state, and one that keeps float32 state."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(n).astype(np.float32) for n in (5000, 7, 4097)]
    hyper = dict(lr=1e-3, weight_decay=0.1, cautious=True)
    tensors = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]
    ours = getattr(akt, optimizer)(
        [{"params": tensors[:2]}, {"params": tensors[2:], "maximize": True}], **hyper, state_dtype="int8"
    )
    numpy_arrays = [a.copy() for a in arrays]
    theirs = getattr(akn, optimizer)(
        [{"params": numpy_arrays[:2]}, {"params": numpy_arrays[2:], "maximize": True}], **hyper, state_dtype="int8"
    )
    name, rule_hyper = (
        ("Adam", {**hyper, "decoupled_weight_decay": True}) if optimizer == "AdamW" else (optimizer, hyper)
    )
    expected_param = arrays[0].copy()
    expected_state = {}
    for key in quantized.state_keys(SPECS[name], rule_hyper):
        expected_state[codes_key(key)], expected_state[scales_key(key)] = encode(key, np.zeros(5000, np.float32))
    for step in (1, 2, 3):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays]
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.from_numpy(grad)
        ours.step()
        theirs.step(grads)
        expected_param, expected_state = reference_step(
            name, expected_param, grads[0], expected_state, step, rule_hyper
        )
    np.testing.assert_array_equal(tensors[0].detach().numpy(), expected_param)
    for key, value in expected_state.items():
        np.testing.assert_array_equal(ours.state[tensors[0]][key].numpy(), value, err_msg=key)
    for tensor, array in zip(tensors, numpy_arrays):
        np.testing.assert_array_equal(tensor.detach().numpy(), array)
