"""Memory-bandwidth probes, timed in the same rounds as the optimizers.

Both run on torch's intra-op threads, the threads torch's optimizers use, over fp32 arrays far
larger than any cache (80 MB each at full size).

- **triad** (STREAM): ``a = b + s·c``. It reads ``b`` and ``c`` and writes ``a``; because ``a`` is
  written without being read, the CPU first reads each of its cache lines (write-allocate). We
  count that honestly: 4 array transfers per element, where STREAM's convention counts 3.
- **read-modify-write**: ``a += s·b``, the access pattern of an optimizer step (every written
  array is read first): 3 array transfers per element.

The bound bandwidth of a row is the faster of the two, so the bound is the most the machine was
seen to move in that run and adamkit cannot reach 100 % by choice of convention.
"""

import torch

from adamkit.benchmarking.schedule import Contender

TRIAD = "triad"
READ_MODIFY_WRITE = "read-modify-write"
LABELS = (TRIAD, READ_MODIFY_WRITE)

FULL_ELEMENTS = 20_000_000
QUICK_ELEMENTS = 1 << 16


def probes(elements):
    """The two probes as contenders over fresh fp32 arrays of ``elements`` elements."""
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(elements, generator=generator)
    b = torch.rand(elements, generator=generator)
    c = torch.rand(elements, generator=generator)
    scalar = 1e-3
    itemsize = a.element_size()

    def triad():
        torch.add(b, c, alpha=scalar, out=a)

    def read_modify_write():
        a.add_(b, alpha=scalar)

    return [
        Contender(TRIAD, triad, bytes_moved=4 * elements * itemsize),
        Contender(READ_MODIFY_WRITE, read_modify_write, bytes_moved=3 * elements * itemsize),
    ]
