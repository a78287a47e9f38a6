"""A compact state_dtype without the C kernels raises when the optimizer is made: it is never
accepted and then silently kept in full precision."""

import numpy as np
import pytest

import adamkit.numpy
from adamkit.kernels import native

torch = pytest.importorskip("torch")
import adamkit.torch  # noqa: E402


@pytest.fixture
def no_kernels(monkeypatch):
    monkeypatch.setattr(native, "_native", None)
    monkeypatch.setattr(native, "_UNAVAILABLE_REASON", "no compiler (simulated)")
    monkeypatch.setattr(native, "_warned", False)


# Lion takes int8 only (adamkit.compact.policy.COMPACT_RULES).
@pytest.mark.parametrize(
    ("name", "state_dtype"),
    [(name, dtype) for name in ("Adam", "AdamW", "Adamax", "Adadelta", "RAdam", "AdaBelief") for dtype in ("int8", "bf16")]
    + [("Lion", "int8")],
)
def test_both_front_ends_refuse_compact_state_without_kernels(no_kernels, name, state_dtype):
    array = np.linspace(-1, 1, 5000, dtype=np.float32)
    before = array.copy()
    with pytest.raises(RuntimeError, match=rf"state_dtype='{state_dtype}' needs adamkit's C kernels, but no compiler \(simulated\)"):
        getattr(adamkit.numpy, name)([array], state_dtype=state_dtype)
    np.testing.assert_array_equal(array, before)
    param = torch.nn.Parameter(torch.linspace(-1, 1, 5000))
    with pytest.raises(RuntimeError, match=rf"state_dtype='{state_dtype}' needs adamkit's C kernels"):
        getattr(adamkit.torch, name)([param], state_dtype=state_dtype)


def test_a_kernel_missing_from_an_older_build_is_named(monkeypatch):
    class WithoutQuant8:
        pass

    monkeypatch.setattr(native, "_native", WithoutQuant8())
    with pytest.raises(RuntimeError, match="state_dtype='int8' needs .* was built without it"):
        adamkit.numpy.Adam([np.zeros(5000, np.float32)], state_dtype="int8")


@pytest.mark.parametrize("state_dtype", [None, "fp32"])
def test_full_precision_state_needs_no_kernels(no_kernels, state_dtype):
    param = torch.nn.Parameter(torch.linspace(-1, 1, 5000))
    reference = torch.nn.Parameter(param.detach().clone())
    optimizer = adamkit.torch.Adam([param], state_dtype=state_dtype)
    theirs = torch.optim.Adam([reference])
    for p in (param, reference):
        p.grad = torch.linspace(1, 2, 5000)
    with pytest.warns(native.NativeKernelsUnavailableWarning):
        optimizer.step()
    theirs.step()
    assert optimizer.state[param]["exp_avg"].dtype is torch.float32
    torch.testing.assert_close(param, reference)
