"""Backends that apply a rule in place to lists of arrays.

``reference`` loops the pure functions of :mod:`adamkit.rules`; it is the truth every faster
backend is tested against. ``native`` runs the fused C kernels; :func:`set_num_threads` sets
how many threads they use.
"""

from adamkit.kernels.native import set_num_threads

__all__ = ["set_num_threads"]
