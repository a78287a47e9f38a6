"""Huge pages for a large parameter with a sparse gradient and for its state, where the OS offers
them (Linux transparent huge pages).

A lazy sparse step reads and writes rows scattered over the parameter and its state: with 4 KiB
pages each row of each tensor needs its own address translation, and after the rest of a
training step has run those translations are no longer cached. On 2 MiB pages they stay
cached. State memory advised before its first touch is faulted in as huge pages when the kernel
has them. The parameter's memory, already in use, is advised and then moved onto huge pages
at once (``MADV_COLLAPSE``, Linux 6.1 and later): the same values at the same addresses, at a
one-time cost that grows with how much memory the kernel must compact (docs/benchmark-log.md).
Nothing else changes: ``madvise`` is a hint, and a
failure is ignored.
"""

import ctypes
import mmap
import sys

import torch

HUGE_PAGE = 2 << 20
# Smaller tensors span few pages: their translations stay cached anyway.
MIN_BYTES = 32 << 20

_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)
# Python's mmap module names it from 3.13 on; its value in Linux's uapi headers.
_MADV_COLLAPSE = getattr(mmap, "MADV_COLLAPSE", 25 if sys.platform.startswith("linux") else None)


def _madvise():
    if _MADV_HUGEPAGE is None:
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_madvise_function = _madvise()


def _large(tensor):
    """Whether ``tensor`` is a CPU tensor large enough to advise, on a system that can."""
    return _madvise_function is not None and tensor.is_cpu and tensor.numel() * tensor.element_size() >= MIN_BYTES


def _advise(tensor, advice):
    """``madvise`` the huge pages wholly inside ``tensor``'s memory with ``advice``."""
    start = -(-tensor.data_ptr() // HUGE_PAGE) * HUGE_PAGE
    end = (tensor.data_ptr() + tensor.numel() * tensor.element_size()) // HUGE_PAGE * HUGE_PAGE
    if end > start:
        _madvise_function(start, end - start, advice)


def full_like(param, value):
    """``torch.full_like(param, value)``, advised onto huge pages if it is large and on the CPU."""
    if not _large(param):
        return torch.full_like(param, value, memory_format=torch.preserve_format)
    state = torch.empty_like(param, memory_format=torch.preserve_format)
    _advise(state, _MADV_HUGEPAGE)
    return state.fill_(value)


def collapse(param):
    """Move a large CPU tensor's memory onto huge pages now, where the kernel can; its values,
    addresses and strides stay as they are."""
    if _large(param) and _MADV_COLLAPSE is not None:
        _advise(param, _MADV_HUGEPAGE)
        _advise(param, _MADV_COLLAPSE)
