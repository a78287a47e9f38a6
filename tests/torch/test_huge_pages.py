"""A large parameter with a sparse gradient, and its state, are advised onto huge pages: the
state is the same tensor as torch.full_like makes, the parameter keeps its values and address,
and madvise is asked for the huge pages wholly inside each."""

import mmap

import pytest
import torch

import adamkit.torch
from adamkit.torch import _huge_pages


class RecordingMadvise:
    def __init__(self):
        self.calls = []

    def __call__(self, start, length, advice):
        self.calls.append((start, length, advice))
        return 0


@pytest.fixture
def recorded(monkeypatch):
    recorder = RecordingMadvise()
    monkeypatch.setattr(_huge_pages, "_madvise_function", recorder)
    monkeypatch.setattr(_huge_pages, "_MADV_HUGEPAGE", getattr(mmap, "MADV_HUGEPAGE", 14))
    monkeypatch.setattr(_huge_pages, "_MADV_COLLAPSE", 25)
    return recorder.calls


def _interior(tensor):
    """The huge pages wholly inside ``tensor``'s memory: ``(start, length)``."""
    start = -(-tensor.data_ptr() // _huge_pages.HUGE_PAGE) * _huge_pages.HUGE_PAGE
    end = (tensor.data_ptr() + tensor.numel() * tensor.element_size()) // _huge_pages.HUGE_PAGE * _huge_pages.HUGE_PAGE
    return start, end - start


@pytest.mark.parametrize("value", [0.0, 0.25])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_a_large_state_is_torchs_full_like_on_advised_pages(recorded, dtype, value):
    param = torch.ones(_huge_pages.MIN_BYTES // 8 + 17, 2, dtype=dtype)
    fill = complex(value, value) if dtype.is_complex else value
    state = _huge_pages.full_like(param, fill)
    expected = torch.full_like(param, fill, memory_format=torch.preserve_format)
    assert state.dtype == dtype and state.shape == param.shape and state.stride() == expected.stride()
    assert torch.equal(state, expected)
    [(start, length, advice)] = recorded
    nbytes = param.numel() * param.element_size()
    assert advice == _huge_pages._MADV_HUGEPAGE
    assert start % _huge_pages.HUGE_PAGE == 0 and length % _huge_pages.HUGE_PAGE == 0
    assert state.data_ptr() <= start < state.data_ptr() + _huge_pages.HUGE_PAGE
    assert start + length <= state.data_ptr() + nbytes < start + length + _huge_pages.HUGE_PAGE


def test_a_small_state_is_not_advised_and_a_transposed_one_keeps_its_strides(recorded):
    small = torch.ones(7, 17)
    assert torch.equal(_huge_pages.full_like(small, 0.5), torch.full((7, 17), 0.5))
    assert not recorded
    transposed = torch.ones(2, _huge_pages.MIN_BYTES // 8 + 1).t()
    state = _huge_pages.full_like(transposed, 0.5)
    assert state.stride() == transposed.stride() and torch.equal(state, torch.full_like(transposed, 0.5))
    assert len(recorded) == 1


def test_without_madvise_the_state_is_plain_full_like(monkeypatch):
    monkeypatch.setattr(_huge_pages, "_madvise_function", None)
    param = torch.ones(_huge_pages.MIN_BYTES // 4 + 3)
    assert torch.equal(_huge_pages.full_like(param, 0.5), torch.full_like(param, 0.5))


def test_only_a_parameter_with_a_sparse_gradient_and_its_state_are_advised(recorded):
    rows = _huge_pages.MIN_BYTES // (4 * 16) + 1
    sparse_param, dense_param = torch.nn.Parameter(torch.ones(rows, 16)), torch.nn.Parameter(torch.ones(rows, 16))
    optimizer = adamkit.torch.Adam([sparse_param, dense_param], amsgrad=True)
    sparse_param.grad = torch.sparse_coo_tensor(torch.tensor([[3]]), torch.ones(1, 16), (rows, 16))
    dense_param.grad = torch.ones(rows, 16)
    optimizer.step()
    state = optimizer.state[sparse_param]
    hugepage, collapse = _huge_pages._MADV_HUGEPAGE, _huge_pages._MADV_COLLAPSE
    expected = [(*_interior(state[key]), hugepage) for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")]
    expected += [(*_interior(sparse_param), hugepage), (*_interior(sparse_param), collapse)]
    assert sorted(recorded) == sorted(expected)
    assert state["exp_avg"][3].ne(0).all() and not state["exp_avg"][4].any()
    # Later steps advise nothing more.
    optimizer.step()
    assert len(recorded) == len(expected)


def test_a_small_parameter_is_not_collapsed(recorded):
    param = torch.nn.Parameter(torch.ones(7, 16))
    optimizer = adamkit.torch.Adam([param])
    param.grad = torch.sparse_coo_tensor(torch.tensor([[3]]), torch.ones(1, 16), (7, 16))
    optimizer.step()
    assert not recorded


def test_the_real_madvise_leaves_the_values_torchs():
    param = torch.ones(_huge_pages.MIN_BYTES // 4 + 5)
    assert torch.equal(_huge_pages.full_like(param, -1.5), torch.full_like(param, -1.5))


def test_the_real_collapse_keeps_the_parameters_values_address_and_strides():
    param = torch.randn(_huge_pages.MIN_BYTES // 64 + 3, 17).t()
    before, address, strides = param.clone(), param.data_ptr(), param.stride()
    _huge_pages.collapse(param)
    assert torch.equal(param, before) and param.data_ptr() == address and param.stride() == strides
