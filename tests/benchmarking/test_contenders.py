import numpy as np
import pytest
import torch

from adamkit import specs
from adamkit.benchmarking import contenders, rule_cases
from adamkit.compact import policy
from adamkit.kernels import native

SIZES = (1, 7, 17, 4097)
HAS_FUSED = {"Adam", "AdamW", "AMSGrad", "Adagrad", "SGD-momentum"}


@pytest.fixture(autouse=True)
def one_thread():
    """torch's fused path stalls on a busy 2-core machine when it runs two threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tensors():
    generator = torch.Generator().manual_seed(3)
    init = [torch.randn(size, generator=generator) for size in SIZES]
    grads = [torch.randn(size, generator=generator) for size in SIZES]
    return init, grads


def _values(params):
    return [np.array(p.detach().numpy() if torch.is_tensor(p) else p, copy=True) for p in params]


@pytest.mark.parametrize("case", rule_cases.CASES, ids=lambda case: case.name)
def test_every_contender_does_the_same_work_on_its_own_copy(case):
    init, grads = _tensors()
    grads_before = [grad.clone() for grad in grads]
    entrants, notes = contenders.build(case, init, grads)
    labels = [entrant.label for entrant in entrants]
    assert labels[0] == contenders.ADAMKIT_TORCH
    in_torch = hasattr(torch.optim, case.optimizer)  # not AdaBelief: adamkit's alone is the reference
    assert ({"torch for-loop", "torch foreach"} <= set(labels)) == in_torch
    assert ("torch fused" in labels) == (case.name in HAS_FUSED)
    assert ("plain NumPy" in labels) == (case.name == "Adam")
    if case.name not in HAS_FUSED:
        assert any("torch fused not timed" in note for note in notes)

    for _ in range(4):
        for entrant in entrants:
            entrant.step()

    reference = "torch for-loop" if in_torch else contenders.ADAMKIT_TORCH
    expected = _values(next(e for e in entrants if e.label == reference).params)
    for entrant in entrants:
        if entrant.label not in contenders.FULL_PRECISION:
            continue
        for got, want, start in zip(_values(entrant.params), expected, init):
            assert not np.array_equal(got, start.numpy()), entrant.label  # it really stepped
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=entrant.label)
    # Gradients are shared by all contenders and must come out untouched.
    for grad, before in zip(grads, grads_before):
        assert torch.equal(grad, before)
    # The initial parameters are copied, never stepped in place.
    assert all(not any(p is t for t in init) for e in entrants for p in e.params)


@pytest.mark.skipif(not native.available(), reason="compact state needs the C kernels")
@pytest.mark.parametrize(("name", "compact"), [("LAMB", False), ("Lion", True), ("AdamW", True)])
def test_each_rule_is_timed_with_the_compact_states_its_policy_allows(name, compact):
    """A rule is timed with each compact state its policy allows; LAMB, which takes none, is
    timed with float32 state only, and its compact contenders are left out with a note."""
    spec = specs.BY_NAME[name]
    init, grads = _tensors()
    entrants, notes = contenders.build(rule_cases.BY_NAME[name], init, grads)
    labels = {entrant.label for entrant in entrants}
    for label, state_dtype in contenders.COMPACT_STATE.items():
        taken = state_dtype in policy.COMPACT_RULES and spec.rule in policy.COMPACT_RULES[state_dtype]
        assert (label in labels) == taken, label
        assert (f"{label} not timed: {name} does not take state_dtype={state_dtype!r}" in notes) == (not taken)
    assert (contenders.ADAMKIT_BF16 in labels) == compact


def test_adamkit_numpy_is_timed_when_the_front_end_exists():
    pytest.importorskip("adamkit.numpy")
    init, grads = _tensors()
    entrants, notes = contenders.build(rule_cases.BY_NAME["Adam"], init, grads)
    if not any(e.label == contenders.ADAMKIT_NUMPY for e in entrants):
        pytest.fail(f"adamkit.numpy exists but was not timed: {notes}")


def test_without_the_kernels_the_int8_contender_is_left_out_with_a_note(monkeypatch):
    """state_dtype='int8' raises RuntimeError without the C kernels: adamkit bench notes it and
    times the others, instead of stopping."""
    monkeypatch.setattr(native, "_native", None)
    monkeypatch.setattr(native, "_UNAVAILABLE_REASON", "no compiler (simulated)")
    init, grads = _tensors()
    entrants, notes = contenders.build(rule_cases.BY_NAME["AdamW"], init, grads)
    labels = [entrant.label for entrant in entrants]
    assert contenders.ADAMKIT_INT8 not in labels and contenders.ADAMKIT_TORCH in labels
    assert any(note.startswith("adamkit.torch int8 not timed: state_dtype='int8' needs adamkit's C kernels") for note in notes), notes


def _stepped_beside_torch(name, label):
    """Contender ``label`` for rule ``name`` and torch's for-loop, four steps each: the contender,
    and the 4097-element parameter of each (checked to have moved)."""
    init, grads = _tensors()
    entrants, _ = contenders.build(rule_cases.BY_NAME[name], init, grads)
    by_label = {entrant.label: entrant for entrant in entrants}
    timed, reference = by_label[label], by_label["torch for-loop"]
    for _ in range(4):
        timed.step()
        reference.step()
    got, want = (_values(entrant.params)[3] for entrant in (timed, reference))
    assert not np.array_equal(got, init[3].numpy())
    return timed, got, want


@pytest.mark.parametrize("name", ["Adam", "AdamW", "AMSGrad"])
def test_the_int8_contender_keeps_8_bit_state_and_tracks_fp32(name):
    int8, got, want = _stepped_beside_torch(name, contenders.ADAMKIT_INT8)
    big = next(p for p in int8.params if p.numel() == 4097)
    assert int8.step.__self__.state[big]["exp_avg_codes"].dtype == torch.int8
    # Four steps move each parameter by about 4 lr = 4e-3; 8-bit moments shift that a little.
    error = np.abs(got - want)
    assert np.median(error) < 5e-5 and np.quantile(error, 0.99) < 4e-4


@pytest.mark.parametrize("name", ["Adam", "Adamax", "Adadelta"])
def test_the_bf16_contender_keeps_bfloat16_state_and_tracks_fp32(name):
    bf16, got, want = _stepped_beside_torch(name, contenders.ADAMKIT_BF16)
    state = bf16.step.__self__.state[bf16.params[3]]
    assert {value.dtype for key, value in state.items() if key != "step"} == {torch.bfloat16}
    # Four steps of at most about lr (1e-3, Adamax 2e-3) each; bfloat16 moments, stochastically
    # rounded, change such a step by a few percent at most.
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_rules_without_compact_state_say_so():
    init, grads = _tensors()
    entrants, notes = contenders.build(rule_cases.BY_NAME["RMSprop"], init, grads)
    for label in contenders.COMPACT_STATE:
        assert label not in [entrant.label for entrant in entrants]
        assert any(note.startswith(f"{label} not timed: ") for note in notes)
