import itertools

import pytest

from adamkit.benchmarking.schedule import Contender, rotation, time_round_robin


def _logged(labels, log, failing=(), optional=()):
    def stepper(label):
        def step():
            log.append(label)
            if label in failing:
                raise RuntimeError(f"{label} is broken")

        return step

    return [Contender(label, stepper(label), optional=label in optional) for label in labels]


def test_rotation_starts_each_round_one_further():
    assert [rotation("abc", r) for r in range(4)] == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert rotation([], 3) == []


def test_each_round_steps_every_contender_once_so_they_interleave():
    log = []
    labels = ["p", "q", "r", "s"]
    timings = time_round_robin(_logged(labels, log), warmup=2, steps=7)
    assert len(log) == 4 * (2 + 7)
    rounds = [log[i : i + 4] for i in range(0, len(log), 4)]
    assert all(sorted(chunk) == labels for chunk in rounds)
    # No contender ever takes two steps in a row.
    assert all(a != b for a, b in itertools.pairwise(log))
    assert {label: len(samples) for label, samples in timings.samples.items()} == dict.fromkeys(labels, 7)


def test_only_the_timed_rounds_are_sampled_with_the_given_clock():
    log = []
    ticks = iter(range(0, 10_000, 1))
    clock_reads = []

    def clock():
        clock_reads.append(len(log))
        return next(ticks) ** 2  # uneven intervals, so a sample shows which reads it spans

    timings = time_round_robin(_logged(["a", "b", "c"], log), warmup=3, steps=5, clock=clock)
    # The clock is read only around timed steps: never during the 9 warm-up steps.
    assert len(clock_reads) == 2 * 3 * 5
    assert min(clock_reads) == 9
    samples = sorted(s for values in timings.samples.values() for s in values)
    expected = sorted((2 * k + 1) ** 2 - (2 * k) ** 2 for k in range(15))
    assert samples == expected


def test_a_failing_optional_contender_is_dropped_during_warmup_with_a_note():
    log = []
    contenders = _logged(["a", "fused", "b"], log, failing={"fused"}, optional={"fused"})
    timings = time_round_robin(contenders, warmup=2, steps=3)
    assert set(timings.samples) == {"a", "b"}
    assert timings.skipped == {"fused": "RuntimeError: fused is broken"}
    assert log.count("fused") == 1
    assert log.count("a") == log.count("b") == 5


def test_a_failing_required_contender_stops_the_run():
    with pytest.raises(RuntimeError, match="a is broken"):
        time_round_robin(_logged(["a", "b"], [], failing={"a"}), warmup=1, steps=1)


def test_duplicate_labels_are_rejected():
    with pytest.raises(ValueError, match="labels must be unique"):
        time_round_robin(_logged(["a", "a"], []), warmup=1, steps=1)
