"""Summary statistics of timing samples."""

import statistics
from typing import NamedTuple


class Summary(NamedTuple):
    """The median and the range of ``count`` samples, in the samples' unit."""

    median: float
    minimum: float
    maximum: float
    count: int  # type: ignore[assignment]  # the field shadows tuple.count


def summarize(samples):
    """Summarize a non-empty sequence of timings; the median is the figure we report.

    >>> summarize([3.0, 1.0, 2.0, 10.0])
    Summary(median=2.5, minimum=1.0, maximum=10.0, count=4)
    """
    values = [float(sample) for sample in samples]
    if not values:
        raise ValueError("samples: need at least one timing, got none")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def timing_entry(samples):
    """A contender's step times (seconds) as the JSON reports hold them: the raw samples, and
    their median, minimum and maximum in milliseconds."""
    summary = summarize(samples)
    return {
        "times_s": samples,
        "median_ms": summary.median * 1e3,
        "min_ms": summary.minimum * 1e3,
        "max_ms": summary.maximum * 1e3,
    }
