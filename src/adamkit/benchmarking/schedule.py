"""Round-robin timing: one step of every contender per round, so drift hits all of them alike.

Round ``r`` steps the contenders in a rotated order starting from contender ``r mod n``, so no
contender always runs right after the same neighbour (whose cache footprint it would inherit).
"""

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Contender:
    """Something to time: ``step()`` does one optimizer step (or one bandwidth probe).

    An ``optional`` contender (torch's fused path, another helper's front end, a third-party
    optimizer) that raises during warm-up is dropped with a note instead of failing the run.
    ``bytes_moved`` is set for bandwidth probes; ``params`` holds what an optimizer updates, so
    that contenders can be checked to do the same work.
    """

    label: str
    step: Callable[[], object]
    optional: bool = False
    bytes_moved: int | None = None
    params: list | None = None


@dataclass
class Timings:
    samples: dict[str, list[float]]
    skipped: dict[str, str] = field(default_factory=dict)


def rotation(items, round_index):
    """``items`` in the order round ``round_index`` steps them."""
    if not items:
        return []
    start = round_index % len(items)
    return list(items[start:]) + list(items[:start])


def time_round_robin(contenders, *, warmup, steps, clock=time.perf_counter):
    """Run ``warmup`` untimed then ``steps`` timed rounds; return each contender's step times.

    Warm-up rounds interleave exactly like timed ones. An optional contender that raises during
    warm-up is removed, with the error recorded in ``Timings.skipped``; any other error, and any
    error during timed rounds, propagates.
    """
    labels = [contender.label for contender in contenders]
    if len(set(labels)) != len(labels):
        raise ValueError(f"contenders: labels must be unique, got {labels!r}")
    active = list(contenders)
    skipped = {}
    for round_index in range(warmup):
        for contender in rotation(active, round_index):
            try:
                contender.step()
            except Exception as error:
                if not contender.optional:
                    raise
                skipped[contender.label] = f"{type(error).__name__}: {error}"
                active.remove(contender)
    samples = {contender.label: [] for contender in active}
    for round_index in range(warmup, warmup + steps):
        for contender in rotation(active, round_index):
            start = clock()
            contender.step()
            samples[contender.label].append(clock() - start)
    return Timings(samples, skipped)
