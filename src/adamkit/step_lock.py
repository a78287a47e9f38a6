"""One step at a time per optimizer, whichever threads call ``step``.

A step reads and rewrites the optimizer's state, its step counts and its cached plan, and the
kernels run with the GIL released. Two threads stepping one optimizer at once interleaved all
of that: steps were lost, and a plan rebuilt by one thread while the other ran it crashed the
process. So each optimizer's ``step`` holds a lock of the optimizer's own throughout; steps of
different optimizers still run at the same time. The lock is re-entrant, so that a subclass's
``step`` may call its parent's, and a closure may step.

The lock is made at the first step and kept in the optimizer's ``__dict__`` as
``(generation, lock)``. A copy (``copy.deepcopy``, pickling) leaves it out and makes its own.
A forked child makes new ones: a lock that another thread of the parent held at the fork
stays held in the child, which has no such thread to release it.
"""

import functools
import os
import threading

ATTRIBUTE = "_step_lock"
"""Where an optimizer keeps its lock; ``__getstate__`` leaves it out."""

_generation = 0  # advanced in each forked child: the locks of an older generation are dropped
_making = threading.Lock()


def lock_of(optimizer):
    """The re-entrant lock that ``optimizer``'s steps hold, made on first use."""
    held = optimizer.__dict__.get(ATTRIBUTE)
    if held is not None and held[0] == _generation:
        return held[1]
    with _making:
        held = optimizer.__dict__.get(ATTRIBUTE)
        if held is None or held[0] != _generation:
            held = optimizer.__dict__[ATTRIBUTE] = (_generation, threading.RLock())
        return held[1]


def one_at_a_time(step):
    """``step``, a method of an optimizer, run under the optimizer's lock."""

    @functools.wraps(step)
    def locked(self, *args, **kwargs):
        with lock_of(self):
            return step(self, *args, **kwargs)

    return locked


def _after_fork_in_child():
    global _generation, _making
    _generation += 1
    _making = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
