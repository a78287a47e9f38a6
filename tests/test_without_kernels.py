"""adamkit installed without a C compiler: the extension cannot be imported, every front end
steps with the reference backend (saying so once), and what needs the kernels says so.

Each check runs in a fresh interpreter in which importing ``adamkit.kernels._native`` fails, as
it does after an install whose build found no compiler."""

import subprocess
import sys

import pytest

BLOCK_EXTENSION = """
import sys, warnings
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "adamkit.kernels._native":
            raise ImportError("no compiler (simulated)")
sys.meta_path.insert(0, Blocker())
warnings.simplefilter("error")
"""


def run_without_extension(code):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_EXTENSION + code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_numpy_front_end_matches_torch_optim_and_warns_once():
    pytest.importorskip("torch")
    output = run_without_extension(
        """
import numpy as np
import torch
import adamkit.numpy
from adamkit.kernels import native
assert not native.available()
w = np.array([1.0, -2.0, 3.0, 0.5, -0.25, 7.0, 1e-3], np.float32)
reference = torch.nn.Parameter(torch.from_numpy(w.copy()))
optimizer = adamkit.numpy.AdamW([w], lr=0.1, weight_decay=0.1, amsgrad=True, maximize=True)
theirs = torch.optim.AdamW([reference], lr=0.1, weight_decay=0.1, amsgrad=True, maximize=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for step in range(4):
        grad = np.linspace(-1, 2, w.size, dtype=np.float32) * (step + 1)
        optimizer.step([grad])
        reference.grad = torch.from_numpy(grad.copy())
        theirs.step()
assert [m.category.__name__ for m in caught] == ["NativeKernelsUnavailableWarning"], caught
np.testing.assert_allclose(w, reference.detach().numpy(), rtol=1e-6, atol=1e-7)
assert not np.allclose(w, [1.0, -2.0, 3.0, 0.5, -0.25, 7.0, 1e-3])
print("ok")
"""
    )
    assert output == "ok"


def test_torch_front_end_matches_torch_optim_dense_and_sparse():
    pytest.importorskip("torch")
    output = run_without_extension(
        """
import torch
import adamkit.torch
from adamkit.kernels.native import NativeKernelsUnavailableWarning
warnings.simplefilter("ignore", NativeKernelsUnavailableWarning)
torch.manual_seed(0)
weights = [torch.randn(7, 3), torch.randn(17)]
ours = [torch.nn.Parameter(w.clone()) for w in weights]
theirs = [torch.nn.Parameter(w.clone()) for w in weights]
groups = lambda ps: [{"params": [ps[0]], "weight_decay": 0.1}, {"params": [ps[1]], "lr": 0.01, "maximize": True}]
a = adamkit.torch.AdamW(groups(ours), lr=0.05, amsgrad=True)
b = torch.optim.AdamW(groups(theirs), lr=0.05, amsgrad=True)
for step in range(5):
    for o, t in zip(ours, theirs):
        o.grad = torch.full_like(o, step + 1.0) * torch.linspace(-1, 1, o.numel()).reshape(o.shape)
        t.grad = o.grad.clone()
    a.step()
    b.step()
for o, t in zip(ours, theirs):
    torch.testing.assert_close(o, t, rtol=1e-6, atol=1e-7)
assert a.state_dict()["state"].keys() == b.state_dict()["state"].keys()

table = torch.nn.Parameter(torch.ones(10, 4))
lazy = adamkit.torch.Adam([table], lr=0.1, eps_hat=True)
reference = torch.nn.Parameter(torch.ones(10, 4))
sparse_adam = torch.optim.SparseAdam([reference], lr=0.1)
for rows in ([1, 3, 3], [0, 3]):
    grad = torch.sparse_coo_tensor(torch.tensor([rows]), torch.arange(len(rows) * 4.0).reshape(-1, 4), (10, 4), check_invariants=True)
    table.grad, reference.grad = grad, grad.clone()
    lazy.step()
    sparse_adam.step()
torch.testing.assert_close(table, reference)
print("ok")
"""
    )
    assert output == "ok"


def test_compact_state_and_forced_isa_say_they_need_the_kernels():
    pytest.importorskip("torch")
    output = run_without_extension(
        """
import numpy as np
import torch
import adamkit.numpy, adamkit.torch
messages = []
for make in (lambda: adamkit.numpy.Adam([np.zeros(5000, np.float32)], state_dtype="int8"),
             lambda: adamkit.torch.Adamax([torch.nn.Parameter(torch.zeros(5000))], state_dtype="bf16"),
             lambda: adamkit.torch.Adam([torch.nn.Parameter(torch.zeros(3))], fused=True)):
    try:
        make()
    except (RuntimeError, ValueError) as error:
        messages.append(str(error))
print(len(messages))
print("\\n".join(messages))
"""
    )
    count, *messages = output.splitlines()
    assert count == "3"
    assert "state_dtype='int8' needs adamkit's C kernels" in messages[0]
    assert "no compiler (simulated)" in messages[0]
    assert "state_dtype='bf16' needs adamkit's C kernels" in messages[1]
    assert "fused" in messages[2]
