"""Backends that apply a rule in place to lists of arrays.

``reference`` loops the pure functions of :mod:`adamkit.rules`; it is the truth every faster
backend is tested against.
"""
