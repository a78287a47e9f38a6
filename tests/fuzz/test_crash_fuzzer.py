"""The crash fuzzer's short run: fixed seeds, both front ends, every operation of the catalogue.

Each test runs its share of the seeds in one subprocess (:mod:`tests.fuzz.harness`); a
sequence that crashes the process, hangs, or leaves a silently wrong result fails the test,
which prints the sequence, its seed and the command that re-runs it. ``ADAMKIT_FUZZ_COUNT``
(sequences per front end) and ``ADAMKIT_FUZZ_SEED`` (the first seed) choose a longer run;
they change how much is run, not what a seed does. ``scripts/sanitize`` runs thousands under
AddressSanitizer.
"""

import os

import pytest

from tests.fuzz import harness
from tests.fuzz.execute import PASSING
from tests.fuzz.sequences import FRONTS, all_features, draw_sequence, features

COUNT = int(os.environ.get("ADAMKIT_FUZZ_COUNT", "260"))  # the seeds from 0 that cover every feature
FIRST = int(os.environ.get("ADAMKIT_FUZZ_SEED", "0"))
PARTS = 2  # tests per front end, for pytest -n 2


def _seeds(part=None):
    seeds = range(FIRST, FIRST + COUNT)
    return list(seeds if part is None else seeds[part::PARTS])


@pytest.mark.parametrize("front", FRONTS)
def test_the_seeds_cover_every_operation_and_configuration(front):
    covered = set().union(*(features(draw_sequence(seed, front)) for seed in _seeds()))
    missing = all_features(front) - covered
    assert not missing, f"raise ADAMKIT_FUZZ_COUNT: seeds {FIRST}..{FIRST + COUNT - 1} miss {sorted(missing, key=str)}"


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("front", FRONTS)
def test_no_sequence_crashes_hangs_or_steps_wrong(front, part):
    pytest.importorskip("torch")
    outcomes = harness.run_batch(front, _seeds(part), bisect=False)
    failures = [outcome for outcome in outcomes if outcome["status"] not in PASSING]
    assert not failures, f"{len(failures)} of {len(outcomes)} sequences failed:\n\n" + "\n\n".join(
        harness.report(outcome) for outcome in failures
    )
    assert [outcome["seed"] for outcome in outcomes] == _seeds(part)
