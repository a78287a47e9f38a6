"""Huge pages for large optimizer state, where the OS offers them (Linux transparent huge pages).

A lazy sparse step reads and writes rows scattered over the parameter and its state: with 4 KiB
pages each row of each tensor needs its own address translation, and after the rest of a
training step has run those translations are no longer cached. On 2 MiB pages the state's
translations stay cached. Memory advised before its first touch is faulted in as huge pages
when the kernel has them; nothing else changes (``madvise`` is a hint, and a failure is ignored).
"""

import ctypes
import mmap

import torch

HUGE_PAGE = 2 << 20
# Smaller tensors span few pages: their translations stay cached anyway.
MIN_BYTES = 32 << 20

_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


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


def full_like(param, value):
    """``torch.full_like(param, value)``, advised onto huge pages if it is large and on the CPU."""
    nbytes = param.numel() * param.element_size()
    if _madvise_function is None or nbytes < MIN_BYTES or not param.is_cpu:
        return torch.full_like(param, value, memory_format=torch.preserve_format)
    state = torch.empty_like(param, memory_format=torch.preserve_format)
    start = -(-state.data_ptr() // HUGE_PAGE) * HUGE_PAGE
    end = (state.data_ptr() + nbytes) // HUGE_PAGE * HUGE_PAGE
    if end > start:
        _madvise_function(start, end - start, _MADV_HUGEPAGE)
    return state.fill_(value)
